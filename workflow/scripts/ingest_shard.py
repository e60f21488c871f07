# Ingest one shard: the top-level cohort folders listed in folders.txt.
import logging
from pathlib import Path

from cmr_atlas.dicom.index import ingest_folders, write_ingest_tables
from cmr_atlas.core.shards import dicom_root, read_folder_list

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
rows = ingest_folders(
    dicom_root(snakemake.params.cohort),
    read_folder_list(snakemake.input.folders),
    snakemake.config["exam_id_key"],  # read from config, never passed as a param (logged)
    Path(snakemake.params.cache),
)
write_ingest_tables(rows, Path(snakemake.output.exams).parent, linkage=snakemake.params.linkage)
