"""The cine pipeline: CNN segmentation and landmarks -> guide points -> LV model -> atlas.

Stages in data-flow order: :mod:`.inference` (masks, landmarks, ED/ES) -> :mod:`.autoguide` /
:mod:`.guidepoints` (the seam: contours and landmarks in patient mm, automated or manual) ->
:mod:`.lvmodel` (fit, measures, wall thickness) -> :mod:`.atlas` (Procrustes + PCA).
"""
