"""Snakemake script of rule manual_guide_points_shard: cmr_atlas.cine.annotations."""
from cmr_atlas.cine.annotations import write_manual_guide_points
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
write_manual_guide_points(
    snakemake.params.annotations, snakemake.input.slices, snakemake.input.exam_keys,  # noqa: F821
    snakemake.config["exam_id_key"], snakemake.params.observer, snakemake.output[0],  # noqa: F821
    # the shard's automated guide points: an input only with manual_landmarks_from_auto
    snakemake.input.auto_guide_points[0] if snakemake.input.auto_guide_points else None,  # noqa: F821
)
