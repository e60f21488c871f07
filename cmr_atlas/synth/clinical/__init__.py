"""The modern clinical protocol (bSSFP cine, stress/rest perfusion, TI scout, LGE, T1 maps): the
subject physiology shared by every series; the per-sequence renderers build on
:mod:`cmr_atlas.synth.physics` and :mod:`cmr_atlas.synth.kinetics`."""
