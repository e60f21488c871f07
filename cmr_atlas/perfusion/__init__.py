"""Myocardial perfusion pipeline (Xue et al. 2020): being filled by the perfusion issue; ``mbf``
(quantification) exists.

Planned stages, each a module with one job: prepare (pair stress/rest with the AIF series),
motion (respiratory motion correction), concentration and aif (signal -> Gd), segment (2D+T CNN),
sectors (AHA 16, from :mod:`cmr_atlas.core.aha`), mbf (quantification).
"""
