import logging

import torch

from cmr_atlas.cine.inference import load_models, run_shard
from cmr_atlas.cli.infer import shard_exam_ids

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
torch.set_num_threads(max(1, snakemake.threads))
p = snakemake.params
models = load_models(p.models_dir, p.method, p.device)
run_shard(shard_exam_ids(snakemake.input.exams), p.cache, snakemake.output.masks.rsplit("/masks", 1)[0], models,
          ed_method=p.ed_frame, absent_threshold=float(p.absent_threshold), batch=int(p.batch))
