"""Landmark and segmentation networks: architectures, preprocessing, training, shipped models.

* :mod:`.preprocess` - the fixed network grid (spacing, field of view) shared by training and
  inference, and the exact mapping between original and network pixels.
* :mod:`.unet`, :mod:`.vgg` - architectures; :mod:`.losses`, :mod:`.augment` - training pieces.
* :mod:`.data` - annotated samples from synthetic exams; :mod:`.train` - training loops.
* :mod:`.registry` - shipped models (weights + model card, checksum verified).
"""
