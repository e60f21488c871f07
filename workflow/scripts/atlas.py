"""Snakemake script of rule atlas: cmr_atlas.cine.atlas_outputs.write_atlas, then the motion atlas
(cmr_atlas.stats.motion_modes.write_motion_atlas, which reads the ED+ES scores just written)."""
from cmr_atlas.cine.atlas_outputs import write_atlas
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.stats.motion_modes import write_motion_atlas

log_to_file(snakemake.log[0])  # noqa: F821
out, params = snakemake.output, snakemake.params  # noqa: F821
write_atlas(
    snakemake.input.shapes, snakemake.input.exams, out.scores, out.explained_variance,  # noqa: F821
    atlas_dir=params.atlas_dir, n_components=params.n_components, scaling=params.scaling,
    modes_to_render=params.modes_to_render, render_backend="auto",
)
inp, cfg = snakemake.input, params.stats  # noqa: F821
write_motion_atlas(
    inp.motion_shapes, out.scores, inp.covariates, scores_path=out.motion_scores,
    explained_variance_path=out.motion_explained_variance, auc_path=out.motion_auc, atlas_dir=params.atlas_dir,
    n_components=params.n_components, risk_factors=cfg["risk_factors"], n_pcs=cfg["n_pcs"], folds=cfg["folds"],
    n_bootstrap=cfg["bootstrap"], seed=cfg["seed"],
)
