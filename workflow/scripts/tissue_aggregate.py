"""Snakemake script of rule tissue: the cohort's tissue_landmarks and t1_segments (ECV with the covariates' hematocrit)."""
from cmr_atlas.cine.tissue.stage import aggregate
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
i, out = snakemake.input, snakemake.output  # noqa: F821
aggregate(i.tissue_landmarks, i.t1_segments, i.covariates, i.extra, out.tissue_landmarks, out.t1_segments)
