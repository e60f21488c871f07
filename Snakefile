# cmr-atlas workflow: legacy cine MRI -> LV atlas -> risk-factor tables.
# Rules live in workflow/rules/, one file per stage; the science lives in the cmr_atlas package.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "workflow/schemas/config.schema.yaml")

include: "workflow/rules/common.smk"
include: "workflow/rules/inventory.smk"


rule all:
    input:
        final_targets(),
    default_target: True
