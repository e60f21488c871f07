"""Annotation and result files of other tools: import into, and export from, cmr-atlas's tables.

One module per format (plain functions, a documented mapping table as a module constant each):

* :mod:`.dicom_index` -- the cohort's DICOM images by SOPInstanceUID, ordered as ingest orders them;
* :mod:`.cvi42` -- cvi42 workspaces (``.cvi42wsx``), read and write;
* :mod:`.cap` -- Cardiac Atlas Project guide points (``GPFile.txt`` + ``SliceInfoFile.txt``);
* :mod:`.nifti` -- NIfTI label maps (import) and images/masks (export);
* :mod:`.dicom_seg` -- DICOM SEG of the automated SAX masks (export) and back (import);
* :mod:`.importers` -- one entry point, :func:`~.importers.import_annotations`, for all of them,
  and :func:`~.importers.import_to_folder` (files -> annotations folder) that ``cmr-atlas
  annotations import`` and the workflow's ``import_annotations`` rule run;
* :mod:`.export` -- the workflow's opt-in per-shard exports (DICOM SEG, NIfTI, CAP).

Importers return :class:`cmr_atlas.formats.annotations.Annotations`: rows of cmr-atlas's own
annotation format (the ``contours``/``landmarks`` columns of :mod:`cmr_atlas.synth.truth`, in
:mod:`.annotations`), which the manual path reads.  Malformed input raises :class:`FormatError`
naming the file and the element.
"""

from __future__ import annotations


class FormatError(ValueError):
    """Malformed or inconsistent input file; the message names the file and the element."""
