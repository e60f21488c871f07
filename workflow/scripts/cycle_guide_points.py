# Guide points of every cine frame (automated path) of one shard, for the per-frame model fits.
from cmr_atlas.core.logs import log_to_file

from cmr_atlas.cine import autoguide
from cmr_atlas.core.shards import shard_exam_ids

log_to_file(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
autoguide.run_cycle_shard(shard_exam_ids(inp.exams) if p.all_frames else [], p.cache, landmarks_path=inp.landmarks,
                          qc_path=inp.qc, phases_path=inp.phases, masks_dir=inp.masks, out_path=out[0])
