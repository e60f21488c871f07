"""Inversion-time selection from the TI scout (STEMI-Net, Bahrami et al. 2019): being filled by the
TI-selection issue.  ``windows`` (ordering, 4-frame windows, labels, decodings) and ``audit`` (null
TI drift to the LGE time, verdicts) exist; the networks, the classical baseline and the workflow
stage are to come.
"""
