# Core-lab annotation files (manual_annotations_format cvi42, cap, nifti or dicom_seg) -> the
# annotations folder RESULTS/annotations/ that the manual guide points read (ANNOTATIONS in
# common.smk points there for those formats).  With the parquet default nothing asks for this
# rule's outputs: the manual path reads the configured folder directly.
from cmr_atlas.formats.importers import annotation_files


rule import_annotations:
    conda:
        CONDA_ENV
    input:
        # a function, so that the files are listed only when the rule is needed
        lambda wildcards: [str(f) for f in annotation_files(ANNOTATIONS_FORMAT, config["manual_annotations"])],
    output:
        contours=RESULTS / "annotations/contours.parquet",
        landmarks=RESULTS / "annotations/landmarks.parquet",
    log:
        RESULTS / "logs/import_annotations.log",
    benchmark:
        RESULTS / "benchmarks/import_annotations.tsv"
    params:
        fmt=ANNOTATIONS_FORMAT,
        cohort=str(COHORT),
        observer=config["manual_observer"],
        labels=config["manual_annotations_labels"],
    script:
        "../scripts/import_annotations.py"
