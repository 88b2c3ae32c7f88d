"""A request as the recommender accepts it: the checks on its text and options (each refusal an
:class:`~melscribe.errors.InvalidRequestError` naming the problem), the filter it asks for, and
:class:`PreparedRequest`, a request checked and ready to encode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from melscribe.encoding.long_text import MAX_REQUEST_CHARS
from melscribe.errors import InvalidRequestError
from melscribe.intent.parser import Intent
from melscribe.serve.catalog import Track

#: The most descriptor sets ``rerank`` may re-score per request (50 add about 280 ms on 2 CPU cores).
MAX_RERANK = 500


@dataclass(frozen=True)
class TrackFilter:
    """What a request lets through: not ``exclude_tracks`` (ids), tracks holding every ``require``d descriptor
    and none of ``exclude`` (descriptors, as expanded by the intent matcher)."""

    exclude_tracks: frozenset[str]
    require: frozenset[str]
    exclude: frozenset[str]

    def accepts(self, track: Track) -> bool:
        """Whether ``track`` passes."""
        if track.id in self.exclude_tracks:
            return False
        if not (self.require or self.exclude):
            return True
        ds = track.descriptors
        return self.require <= ds and not (self.exclude & ds)


@dataclass(frozen=True)
class PreparedRequest:
    """A request checked by :meth:`Recommender.prepare`: the text to encode, ``k``, the filter, and what the
    request rejects (``None`` when intent handling is off or it rejects nothing)."""

    text: str
    k: int
    filter: TrackFilter
    intent: Intent | None = None
    rerank: int = 0


def check_request_text(request: Any, max_chars: int = MAX_REQUEST_CHARS) -> str:
    """``request`` without surrounding white space; :class:`InvalidRequestError` if it is not a string, is
    empty, has more than ``max_chars`` characters, or cannot be encoded as UTF-8 (a lone surrogate, which
    the tokenizer cannot read). Cheap: nothing is tokenised."""
    if not isinstance(request, str):
        raise InvalidRequestError(f"the request must be a string, not {type(request).__name__}")
    if len(request) > max_chars:
        raise InvalidRequestError(f"the request has {len(request):,} characters; at most {max_chars:,} are accepted")
    text = request.strip()
    if not text:
        raise InvalidRequestError("the request is empty")
    try:
        request.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidRequestError(f"the request is not valid Unicode text ({e.reason} at character {e.start})") from None
    return text


def check_k(k: Any) -> int:
    """``k`` as an ``int``; :class:`InvalidRequestError` unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidRequestError(f"k must be an integer, not {type(k).__name__}")
    if k <= 0:
        raise InvalidRequestError(f"k must be positive, not {k}")
    return int(k)


def as_list(values: Iterable[str] | None, what: str, *, normalise: bool = False) -> list[str]:
    """A request option that names strings (one string, or several) as a list (stripped and lower-cased with
    ``normalise``); :class:`InvalidRequestError` naming ``what`` for anything else."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        if not isinstance(v, str):
            raise InvalidRequestError(f"{what} must hold strings, not {type(v).__name__}")
        out.append(v.strip().lower() if normalise else v)
    return out
