# cmr-atlas workflow: legacy cine MRI -> LV atlas -> risk-factor tables.
# Rules live in workflow/rules/, one file per stage; the science lives in the cmr_atlas package.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "workflow/schemas/config.schema.yaml")

include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/guidepoints.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/atlas.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/train.smk"


rule all:
    input:
        final_targets(),
    default_target: True
