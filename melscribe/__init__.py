"""melscribe: natural-language music recommendation through high-level song descriptors.

    >>> from melscribe import recommend
    >>> for r in recommend("upbeat tropical music with a steel drum melody", k=3):
    ...     print(r.track_id, r.matched_descriptors)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from melscribe.version import __version__
__all__ = ["recommend", "Recommender", "load_recommender", "__version__"]

if TYPE_CHECKING:
    from melscribe.serve.recommend import Recommender, recommend


def __getattr__(name: str):
    # Lazy: `import melscribe` stays cheap (no torch) until the recommender is used.
    if name in ("recommend", "Recommender"):
        from melscribe.serve import recommend as _module

        return getattr(_module, name)
    if name == "load_recommender":
        from melscribe.serve.recommend import default_recommender

        return default_recommender
    raise AttributeError(f"module 'melscribe' has no attribute {name!r}")
