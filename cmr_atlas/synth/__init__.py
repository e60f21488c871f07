"""Synthetic legacy cine MRI cohort with ground truth (the demo input and test bed)."""
