"""``python -m cmr_atlas``: the same as the ``cmr-atlas`` command."""

import sys

from cmr_atlas.cli import main

sys.exit(main())
