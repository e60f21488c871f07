"""Cohort statistics: covariates (joined without identifiers, BSA indexing once), risk-factor
models (cross-validated AUC, DeLong, odds ratios) and automated-vs-manual agreement."""
