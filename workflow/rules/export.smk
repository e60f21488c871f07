# Opt-in exports in core-lab formats, one job per shard (config export: {dicom_seg, nifti, cap};
# rule all asks for them only when switched on: EXPORT_MANIFESTS in common.smk).  Each job writes
# one folder per exam (named by exam_id) and a manifest.parquet of its files, the declared output.
# Package code: cmr_atlas/formats/export.py.


# DICOM SEG of the automated SAX masks at ED and ES.  IDENTIFIED: a SEG copies the source images'
# patient and study attributes (a viewer needs them), so it is written under export_identified/,
# apart from the de-identified results -- like linkage.parquet, share it only where identifiers may go.
rule export_dicom_seg_shard:
    conda:
        CONDA_ENV
    input:
        folders=RESULTS / "shards/{shard}/folders.txt",
        exam_keys=RESULTS / "shards/{shard}/exam_keys.parquet",
        phases=RESULTS / "shards/{shard}/phases.parquet",
        masks=RESULTS / "shards/{shard}/masks",
    output:
        EXPORT_MANIFESTS["dicom_seg"],
    log:
        RESULTS / "logs/export_dicom_seg/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/export_dicom_seg_shard/{shard}.tsv"
    params:
        cohort=str(COHORT),
    script:
        "../scripts/export_dicom_seg.py"


# NIfTI SAX images (image cache) and automated masks per exam; no identifiers.
rule export_nifti_shard:
    conda:
        CONDA_ENV
    input:
        exams=RESULTS / "shards/{shard}/exams.parquet",
        masks=RESULTS / "shards/{shard}/masks",
    output:
        EXPORT_MANIFESTS["nifti"],
    log:
        RESULTS / "logs/export_nifti/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/export_nifti_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
    script:
        "../scripts/export_nifti.py"


# CAP guide points (SliceInfoFile.txt + GPFile_NNN.txt) of every source, auto and manual; no identifiers.
rule export_cap_shard:
    conda:
        CONDA_ENV
    input:
        guide_points=RESULTS / "shards/{shard}/guide_points.parquet",
        slices=RESULTS / "shards/{shard}/slices.parquet",
    output:
        EXPORT_MANIFESTS["cap"],
    log:
        RESULTS / "logs/export_cap/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/export_cap_shard/{shard}.tsv"
    script:
        "../scripts/export_cap.py"
