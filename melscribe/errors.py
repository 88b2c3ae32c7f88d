"""Exceptions raised by melscribe. All derive from :class:`MelscribeError` (a ``ValueError``)."""


class MelscribeError(ValueError):
    """Base class of every error melscribe raises on bad input or bad files."""


class DataError(MelscribeError):
    """A data file or directory is missing, unreadable, or lacks a required column."""


class InvalidRequestError(MelscribeError):
    """A request or a parameter of a call is not usable (empty, wrong type, out of range)."""


class IndexCorruptError(MelscribeError):
    """An index folder is unreadable, truncated or inconsistent."""


class StaleIndexError(MelscribeError):
    """An index was built with another model or another catalog than the one asked for."""


class ModelUnavailableError(MelscribeError):
    """A model named by the user cannot be loaded here (no hub, missing folder)."""


class IndexBusyError(MelscribeError):
    """Another process held the lock of an index folder for longer than a save waits."""
