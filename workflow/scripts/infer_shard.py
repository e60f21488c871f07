# CNN inference of one shard: the ok exams of its exams table, models loaded once.
from cmr_atlas.cine.inference import infer_shard
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.core.shards import shard_exam_ids

log_to_file(snakemake.log[0])
p, out = snakemake.params, snakemake.output
infer_shard(shard_exam_ids(snakemake.input.exams), p.cache, p.models_dir, method=p.method, device=p.device,
            precision=p.precision,
            threads=snakemake.threads, landmarks_path=out.landmarks, qc_path=out.qc, phases_path=out.phases,
            masks_dir=out.masks, status_path=out.status, ed_method=p.ed_frame,
            absent_threshold=p.absent_threshold, batch=p.batch, series_path=snakemake.input.series,
            measures_path=out.measures, runtime=p.runtime,
            crop_margin_mm=p.crop_margin_mm, lv_centre_from_mask=p.lv_centre_from_mask, frames=p.frames)
