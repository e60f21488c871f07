"""Snakemake script: fit the LV model for one shard (cmr_atlas.cine.lvmodel.run.fit_shard)."""

from cmr_atlas.cine.lvmodel.run import CycleInputs, fit_shard
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
fit_shard(inp.guide_points, inp.slices, shapes_path=out.shapes, model_frames_path=out.model_frames,
          slice_shifts_path=out.slice_shifts, measures_path=out.measures, wall_thickness_path=out.wall_thickness,
          status_path=out.status, breath_hold=p.breath_hold, shift_reference=p.shift_reference, vtp_dir=p.vtp_dir,
          cycle=CycleInputs(inp.exams, p.cache, inp.landmarks, inp.qc, inp.phases, inp.masks),
          volume_curves_path=out.volume_curves, function_indices_path=out.function_indices,
          motion_shapes_path=out.motion_shapes, all_frames=p.all_frames,
          through_plane=p.through_plane, lax_registration=p.lax_registration)
