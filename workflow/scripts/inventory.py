import pandas as pd

from cmr_atlas.shards import dicom_root, read_folder_list

root = dicom_root(snakemake.params.cohort)
rows = []
for folder in read_folder_list(snakemake.input.folders):
    files = [p for p in (root / folder).rglob("*") if p.is_file()] if folder != "." else []
    rows.append({"n_files": len(files), "bytes": sum(p.stat().st_size for p in files)})
pd.DataFrame(rows, columns=["n_files", "bytes"]).to_parquet(snakemake.output[0])
