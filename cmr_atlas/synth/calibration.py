"""Published figures the synthetic cohort is calibrated to (copied here with their sources).

Nothing here is read from ../shared at run time.
"""

from __future__ import annotations

import numpy as np

# Clinical indices of the Cardiac Atlas Project MESA/DETERMINE atlas, computed from
# CardiacAtlasProject/lv-ortho-modes data/clinical_index.csv (GPL-2.0): 1991 asymptomatic MESA
# participants (ASYMP) and 300 myocardial-infarction patients (MI, DETERMINE).
# Order: EDVI (ml/m2), Sphericity (%), EF (%), RWT (%), Conicity (%), LS (%).
INDEX_NAMES = ("edvi", "sphericity_pct", "ef_pct", "rwt_pct", "conicity_pct", "ls_pct")

CAP_INDEX_MEAN = {
    "ASYMP": np.array([67.832, 37.595, 62.850, 39.696, 74.409, 13.380]),
    "MI": np.array([96.526, 41.315, 41.267, 35.214, 70.333, 8.097]),
}
CAP_INDEX_SD = {
    "ASYMP": np.array([13.286, 7.804, 7.283, 9.460, 7.738, 3.616]),
    "MI": np.array([25.031, 8.590, 10.946, 8.384, 7.893, 3.341]),
}
CAP_INDEX_CORR = {
    "ASYMP": np.array([
        [1.000, 0.203, -0.291, -0.329, -0.032, 0.039],
        [0.203, 1.000, 0.043, -0.232, -0.150, -0.055],
        [-0.291, 0.043, 1.000, 0.055, 0.247, 0.336],
        [-0.329, -0.232, 0.055, 1.000, 0.287, -0.108],
        [-0.032, -0.150, 0.247, 0.287, 1.000, 0.248],
        [0.039, -0.055, 0.336, -0.108, 0.248, 1.000],
    ]),
    "MI": np.array([
        [1.000, 0.386, -0.612, -0.459, 0.010, -0.476],
        [0.386, 1.000, -0.190, -0.480, -0.481, -0.112],
        [-0.612, -0.190, 1.000, 0.322, -0.039, 0.762],
        [-0.459, -0.480, 0.322, 1.000, 0.406, 0.100],
        [0.010, -0.481, -0.039, 0.406, 1.000, -0.114],
        [-0.476, -0.112, 0.762, 0.100, -0.114, 1.000],
    ]),
}
# Observed ranges in the same data (ASYMP min/max, MI min/max pooled): samples are kept inside.
CAP_INDEX_RANGE = (
    np.array([30.0, 15.0, 8.0, 13.0, 49.0, -2.0]),
    np.array([225.0, 86.0, 81.0, 92.0, 97.0, 29.0]),
)

# MESA baseline CMR cohort, legacy-atlas paper Table 1 (n=5003).
MESA = {
    "age_mean": 61.5, "age_sd": 10.1, "age_min": 45.0, "age_max": 84.0,
    # the MESA age SD (10.1) is that of a population truncated to 45-84: the untruncated SD that
    # reproduces it
    "age_sd_untruncated": 14.8,
    "age_mean_untruncated": 58.9,
    "female": 0.524,
    "sbp_mean": 125.4, "sbp_sd": 21.3,
    "dbp_mean": 71.8, "dbp_sd": 10.3,
    "hr_mean": 62.8, "hr_sd": 9.5,
    "diabetes": 0.092,
    "hypertension": 0.353,
    "smoking": {"never": 0.515, "former": 0.358, "current": 0.127},
}
# MESA body size, total cholesterol and coronary calcium (MESA baseline publications:
# Bild et al., Am J Epidemiol 2002; Bluemke et al., JACC 2008; McClelland et al., Circulation 2006).
MESA_BODY = {
    "height_cm": {"F": (159.0, 6.8), "M": (172.0, 7.4)},
    "weight_kg": {"F": (73.0, 16.5), "M": (84.5, 15.0)},
}
MESA_CHOLESTEROL_MEAN_SD = (194.0, 35.5)  # mg/dl
MESA_HIGH_CHOLESTEROL = 0.30  # total >= 240 mg/dl or lipid-lowering treatment (approx.)
MESA_CALCIUM_POSITIVE = {"F": 0.42, "M": 0.61}  # Agatston > 0 at mean age (McClelland 2006)

# Legacy-atlas paper Table 5: cross-validated AUCs of shape for each risk factor (manual atlas).
MESA_TABLE5_AUC_MANUAL = {
    "hypertension": 0.69, "diabetes": 0.56, "current_smoker": 0.59,
    "high_cholesterol": 0.50, "calcium_positive": 0.61,
}

# Breath-hold misregistration: SD 2-3 mm in-plane, tails to 8 mm (Roujol et al., MRM 2014).
BREATH_HOLD_INPLANE_SD_MM = 2.0  # per in-plane component
BREATH_HOLD_THROUGH_SD_MM = 1.0
BREATH_HOLD_MAX_MM = 8.0


def cap_covariance(group: str) -> np.ndarray:
    """Covariance matrix of the six clinical indices for ``group`` (ASYMP or MI)."""
    sd = CAP_INDEX_SD[group]
    return CAP_INDEX_CORR[group] * np.outer(sd, sd)
