"""melscribe: natural-language music recommendation through high-level song descriptors."""

__version__ = "0.1.0"
