"""The package version, in one place (read by setup.cfg and the HTTP API)."""

__version__ = "0.1.0"
