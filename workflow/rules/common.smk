# Shared helpers: results paths, shard manifest, input functions.
from pathlib import Path

from cmr_atlas.shards import update_manifest

RESULTS = Path(config["results_dir"])
COHORT = Path(config["cohort_dir"])

# Shard membership is append-only (see cmr_atlas/shards.py): adding exams reruns at most one shard.
SHARDS = update_manifest(COHORT, RESULTS, config["shard_size"])

# Manual annotations in the documented truth format; default: the synthetic cohort's truth/.
_ann = config.get("manual_annotations", "") or (
    str(COHORT / "truth") if (COHORT / "truth" / "contours.parquet").is_file() else ""
)
ANNOTATIONS = Path(_ann) if _ann else None


def per_shard(pattern):
    """Expand a per-shard output pattern over every shard."""
    return [str(pattern).format(shard=s) for s in SHARDS]


def final_targets():
    return [
        str(RESULTS / "exams.parquet"),
        str(RESULTS / "guide_points.parquet"),
        str(RESULTS / "measures.parquet"),
        str(RESULTS / "stats/risk_factor_auc.parquet"),
        str(RESULTS / "report/index.html"),
    ]
