# Global MBF and reserve by risk factor: cmr_atlas.stats.perfusion_risk.
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.stats.perfusion_risk import write_perfusion_by_risk_factor

log_to_file(snakemake.log[0])  # noqa: F821
i = snakemake.input  # noqa: F821
write_perfusion_by_risk_factor(i.perfusion_global, i.covariates, i.extra, snakemake.params.risk_factors,  # noqa: F821
                               snakemake.output[0])  # noqa: F821
