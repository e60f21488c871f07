"""OpenMP's wait policy for the batch jobs.

PyTorch's OpenMP threads spin while they wait for work; on a machine whose cores other jobs share
(Snakemake runs two shards on two cores) the spinning burns CPU the other job needs: measured on
this kind of machine, inference took 5.3-5.6 CPU s per exam with the default policy and 1.5 with
passive waiting (docs/cluster.md).  OpenMP reads the variable once, when torch is imported, so it
is set before any stage runs; a value the user exported wins.
"""

from __future__ import annotations

import os

WAIT_POLICY = "PASSIVE"


def prefer_passive_wait() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process and its children unless already set."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
