"""What :class:`~melscribe.serve.recommend.Recommender` needs from the place its descriptor sets are kept: the
store seam.

A store holds the embeddings of a catalog's unique descriptor-set texts (row ``i`` is ``texts[i]``) and of
its descriptor vocabulary, and says what it was built from. Two implementations:

- :class:`~melscribe.serve.index.DescriptorIndex`: a faiss index inside the process, saved to a folder (the
  default, ``--store faiss``);
- :class:`~melscribe.serve.milvus_store.MilvusStore`: collections in Milvus, embedded (Milvus Lite, ``--store
  milvus:PATH.db``) or a server or cluster (``--store milvus://HOST:PORT``), with the filters evaluated
  inside the engine and TF-IDF candidates from its sparse index.

:class:`SetFilter` is what a store may prune before ranking: sets carrying an excluded descriptor, and sets
none of whose tracks can carry every required descriptor. Pruning is an optimisation: the recommender still
checks every track against the request's filter, so a store that prunes nothing (faiss) ranks the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

#: The stores ``--store`` names: ``faiss``, ``milvus:PATH.db`` (Milvus Lite) or ``milvus://HOST:PORT``.
STORE_KINDS = ("faiss", "milvus")


@dataclass(frozen=True)
class SetFilter:
    """Descriptor sets a store may leave out: those carrying one of ``exclude``, and those whose tracks'
    descriptors (all of them, over every set of each track) do not hold all of ``require``."""

    exclude: frozenset[str] = frozenset()
    require: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.exclude or self.require)


class DescriptorStore(Protocol):
    """The descriptor sets of one catalog under one model, as :class:`~melscribe.serve.recommend.Recommender`
    reads them."""

    texts: list[str]
    vocabulary: list[str]
    vocabulary_embeddings: np.ndarray
    model_name: str
    fingerprint: str
    kind: str

    def __len__(self) -> int: ...

    # optional: ``prunes`` (true when ``search`` evaluates ``where`` in an engine) and ``max_search`` (the most
    # rows one search returns); a store without them prunes nothing and searches any number of rows

    @property
    def dim(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, *, where: SetFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query ``(scores, rows)``, each ``(n, k)``, rows ``-1`` past the end."""

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored float32 embeddings of ``rows``, shape ``(len(rows), dim)``."""

    def descriptor_scores(self, query: np.ndarray, descriptors: Sequence[str]) -> list[float | None]:
        """Cosine of ``query`` to each descriptor (``None`` for one outside the vocabulary)."""

    def descriptors_read(self, row: int, descriptors: Sequence[str]) -> Sequence[str]:
        """The leading descriptors of row ``row``'s set that the encoder read."""

    def check(self, encoder: Any = None, fingerprint: str | None = None) -> None:
        """Raise :class:`~melscribe.errors.StaleIndexError` if built with another model or catalog."""

    def info(self) -> dict[str, Any]:
        """What the store holds and how it was built, as JSON values."""


def parse_store(spec: str | None) -> tuple[str, str | None]:
    """``--store`` → ``(kind, address)``: ``faiss`` (or ``None``) → ``("faiss", None)``; ``milvus:PATH.db`` →
    ``("milvus", PATH.db)`` (Milvus Lite, a local file); ``milvus://HOST:PORT`` → ``("milvus",
    "http://HOST:PORT")``. Anything else raises :class:`~melscribe.errors.InvalidRequestError`."""
    from melscribe.errors import InvalidRequestError

    if spec is None or spec == "faiss":
        return "faiss", None
    if spec.startswith("milvus://"):
        rest = spec.removeprefix("milvus://")
        if not rest or "/" in rest.rstrip("/"):
            raise InvalidRequestError(f"--store {spec}: expected milvus://HOST:PORT")
        return "milvus", "http://" + rest.rstrip("/")
    if spec.startswith("milvus:"):
        path = spec.removeprefix("milvus:")
        if not path.endswith(".db"):
            raise InvalidRequestError(f"--store {spec}: a Milvus Lite database is a file named *.db "
                                      "(e.g. milvus:~/melscribe.db)")
        return "milvus", path
    raise InvalidRequestError(f"--store {spec!r}: expected faiss, milvus:PATH.db (Milvus Lite) or milvus://HOST:PORT")
