"""Prolate spheroidal finite-element LV model: fitting with breath-hold correction, clinical measures.

Modules: :mod:`hermite` (bicubic Hermite lambda field), :mod:`prolate` (coordinates), :mod:`frame`
(local frame from landmarks), :mod:`fit` (least squares, slice shifts), :mod:`measures` (sampling,
volumes, AHA wall thickness), :mod:`exam` (one exam end to end), :mod:`outputs` (tables),
:mod:`run` (the per-shard fit loop, VTP output; ``cmr-atlas fit``).  Description: docs/lvmodel.md.
"""
