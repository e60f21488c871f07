# cmr-atlas workflow: legacy cine MRI -> LV atlas -> risk-factor tables.
# Rules live in workflow/rules/: shared stages at the top (ingest, stats, report), one folder per
# pipeline (cine/); the science lives in the cmr_atlas package.  common.smk validates the config
# and fills every default from workflow/schemas/config.schema.yaml (`cmr-atlas config` prints them).
from snakemake.utils import min_version

from cmr_atlas.core.openmp import prefer_passive_wait

prefer_passive_wait()  # every job inherits it: OpenMP threads must not spin on shared cores

min_version("9.0")

configfile: "config/config.yaml"

include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/formats.smk"
include: "workflow/rules/cine/infer.smk"
include: "workflow/rules/cine/guidepoints.smk"
include: "workflow/rules/cine/fit.smk"
include: "workflow/rules/status.smk"
include: "workflow/rules/cine/atlas.smk"
include: "workflow/rules/tiscout/tiscout.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/cine/train.smk"
include: "workflow/rules/perfusion/perfusion.smk"
include: "workflow/rules/cine/tissue.smk"


rule all:
    input:
        final_targets(),
    default_target: True
