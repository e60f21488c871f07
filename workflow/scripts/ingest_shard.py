# Ingest one shard: the top-level cohort folders listed in folders.txt.
from cmr_atlas.core.logs import log_to_file

from cmr_atlas.core.shards import read_folder_list
from cmr_atlas.dicom.index import ingest_shard

log_to_file(snakemake.log[0])
out = snakemake.output
ingest_shard(
    snakemake.params.cohort,
    read_folder_list(snakemake.input.folders),
    snakemake.config["exam_id_key"],  # read from config, never passed as a param (logged)
    snakemake.params.cache,
    exams_path=out.exams, series_path=out.series, slices_path=out.slices, exam_keys_path=out.exam_keys,
    status_path=out.status, linkage_path=out.get("linkage"),
)
