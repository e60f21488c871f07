# Shared helpers: results paths, shard manifest, input functions.
from pathlib import Path

from cmr_atlas.shards import update_manifest

RESULTS = Path(config["results_dir"])
COHORT = Path(config["cohort_dir"])

# Shard membership is append-only (see cmr_atlas/shards.py): adding exams reruns at most one shard.
SHARDS = update_manifest(COHORT, RESULTS, config["shard_size"])


def shard_file(shard):
    return RESULTS / "shards" / shard / "folders.txt"


def per_shard(pattern):
    """Expand a per-shard output pattern over every shard."""
    return [str(pattern).format(shard=s) for s in SHARDS]


def final_targets():
    return [str(RESULTS / "inventory.parquet")]
