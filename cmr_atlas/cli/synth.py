"""``cmr-atlas synth``: write a synthetic cardiac MRI cohort with ground truth: the legacy MESA cine
protocol (default) or the modern clinical exam (bSSFP cine, perfusion, TI scout, LGE, T1 maps)."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from cmr_atlas.synth.clinical import cohort as clinical
from cmr_atlas.synth.merge import MergeError, check_new_exams, check_no_other_exams, merge_cohort
from cmr_atlas.synth.mesa import cohort as mesa

log = logging.getLogger(__name__)

PROTOCOLS = {"mesa": mesa, "clinical": clinical}  # module with exam_label and generate_cohort


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-exams", type=int, required=True, help="number of exams")
    p.add_argument("--protocol", choices=tuple(PROTOCOLS), default="mesa",
                   help="mesa: 2000-era GRE cine (SAX, 2CH, 4CH); clinical: bSSFP cine (SAX, 2/3/4CH), "
                        "stress/rest perfusion, TI scout, LGE and T1 maps")
    p.add_argument("--seed", type=int, required=True, help="cohort seed (same seed, same bytes)")
    p.add_argument("--out", required=True, help="output folder (dicom/ and truth/ are written in it; one that "
                                               "holds other exams is refused unless --append)")
    p.add_argument("--mi-fraction", type=float, default=0.0, help="fraction of myocardial-infarction subjects")
    p.add_argument("--observers", type=int, default=0, choices=(0, 1, 2),
                   help="add simulated observers' ED/ES annotations (obs1, obs2)")
    p.add_argument("--faults", type=float, default=0.0,
                   help="fraction of exams given a realistic fault (truncated file, missing slice, ...; "
                        "clinical exams also truncated perfusion, scout without inversion times, ...)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--append", action="store_true",
                   help="add the exams to an existing cohort in --out (its truth tables extended): a "
                        "cohort that mixes protocols")


def run(args: argparse.Namespace) -> int:
    if args.n_exams < 1:
        raise SystemExit("cmr-atlas synth: --n-exams must be >= 1")
    if not 0.0 <= args.mi_fraction <= 1.0 or not 0.0 <= args.faults <= 1.0:
        raise SystemExit("cmr-atlas synth: --mi-fraction and --faults must be between 0 and 1")
    protocol = PROTOCOLS[args.protocol]
    target = Path(args.out)
    if args.append and not (target / "dicom").is_dir():
        raise SystemExit(f"cmr-atlas synth --append: no cohort in {target} (no dicom/ folder)")
    labels = [protocol.exam_label(args.seed, i) for i in range(args.n_exams)]
    try:  # before generating: a clash should not cost the generation
        if args.append:
            check_new_exams(labels, target)
        else:
            check_no_other_exams(labels, target)
    except MergeError as exc:
        hint = "" if args.append else ": add to that cohort with --append, or write to a new --out folder"
        raise SystemExit(f"cmr-atlas synth{' --append' if args.append else ''}: {exc}{hint}") from None
    out = target / f".append-{args.protocol}-{args.seed}" if args.append else target
    if args.append:
        shutil.rmtree(out, ignore_errors=True)  # a staging folder left by an interrupted run
    out = protocol.generate_cohort(out, args.n_exams, args.seed, args.mi_fraction, args.observers, args.jobs)
    if args.faults > 0:
        from cmr_atlas.synth.faults import write_faults  # reads DICOM back with ingest's view selection

        write_faults(out, labels, args.faults, args.seed, clinical_exams=labels if protocol is clinical else ())
    if args.append:
        try:
            added = merge_cohort(out, target)
        except MergeError as exc:
            raise SystemExit(f"cmr-atlas synth --append: {exc}") from None
        finally:
            shutil.rmtree(out, ignore_errors=True)
        log.info("%d %s exams added to %s", len(added), args.protocol, target)
        return 0
    log.info("synthetic cohort written to %s", out)
    return 0
