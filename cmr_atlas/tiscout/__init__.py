"""Inversion-time selection from the TI scout (STEMI-Net, Bahrami et al. 2019): filled by the
TI-selection issue.  Planned modules: windows, models, select, audit.
"""
