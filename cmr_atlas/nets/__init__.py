"""Generic networks, shared by every pipeline: architectures, preprocessing, training loops, runtime.

* :mod:`.preprocess` - the fixed network grid (spacing, field of view) shared by training and
  inference, and the exact mapping between original and network pixels.
* :mod:`.unet`, :mod:`.vgg` - architectures; :mod:`.losses`, :mod:`.augment` - training pieces.
* :mod:`.train` - training loops (a pipeline passes its samples, labels and targets).
* :mod:`.runtime` - inference: device, autocast, batched forward pass.
* :mod:`.registry` - model files (weights + model card, checksum verified).
"""
