"""cmr-atlas: legacy cine cardiac MRI to a population atlas of LV shape and motion."""

__version__ = "0.1.0"
