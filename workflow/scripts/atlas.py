"""Snakemake script of rule atlas: cmr_atlas.cine.atlas_outputs.write_atlas."""
from cmr_atlas.cine.atlas_outputs import write_atlas
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
out, params = snakemake.output, snakemake.params  # noqa: F821
write_atlas(
    snakemake.input.shapes, snakemake.input.exams, out.scores, out.explained_variance,  # noqa: F821
    atlas_dir=params.atlas_dir, n_components=params.n_components, scaling=params.scaling,
    modes_to_render=params.modes_to_render, render_backend="auto",
)
