# Concatenate the per-shard ingest tables into cohort tables.
from cmr_atlas.dicom.index import EXAM_KEYS, EXAMS, LINKAGE, SERIES, SLICES
from cmr_atlas.core.tables import concat_tables, write_table

for schema in (EXAMS, SERIES, SLICES, EXAM_KEYS, LINKAGE):
    if schema.name in snakemake.output.keys():
        paths = getattr(snakemake.input, schema.name)
        write_table(concat_tables(list(paths), schema), snakemake.output[schema.name], schema)
