"""Serving: from a request to tracks.

* :mod:`.catalog`: tracks, their descriptor sets and metadata (CSV/JSONL/Parquet, MusicCaps, audio folders);
* :mod:`.index`: the sentence encoder and the faiss index of descriptor-set embeddings (flat, HNSW or IVF);
* :mod:`.recommend`: :class:`~.recommend.Recommender` and ``recommend()``;
* :mod:`.audio`: the joint audio–text model for tracks known only by their audio;
* :mod:`.api`: the FastAPI app; :mod:`.commands`: the ``index``, ``recommend`` and ``serve`` sub-commands.

The benchmark of this path is experiment code: ``experiments/benchmark.py`` (``experiments/bench_recommend.py``).
"""
