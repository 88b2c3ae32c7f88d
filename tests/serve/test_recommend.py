"""Tests of melscribe.serve.recommend on a small catalog, a MusicCaps sample and audio-only tracks."""

from __future__ import annotations

import dataclasses
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melscribe.errors import DataError, IndexCorruptError, InvalidRequestError, StaleIndexError
from melscribe.serve import ranking, recommend as recommend_mod
from melscribe.serve.catalog import Catalog
from melscribe.encoding.encoder import TextEncoder
from melscribe.serve.index import FAISS_FILE, DescriptorIndex
from melscribe.serve.recommend import Recommender
from melscribe.serve.store_setup import index_cache_dir

from serve_support import write_audio
from tiny_fixtures import tiny_clap

REQUESTS = ["I'd love upbeat tropical music with steel drums", "something sad with piano for a rainy day",
            "aggressive metal with distorted guitars", "smooth jazz for a lounge", "relaxing ambient synths",
            "old school rap", "an epic orchestral piece with violins", "dark techno for the warehouse"]


def test_results_are_ranked_unique_and_explained(rec: Recommender) -> None:
    results = rec.recommend("I'd love upbeat tropical music with steel drums", k=5)
    assert [r.rank for r in results] == [1, 2, 3, 4, 5]
    assert {results[0].track_id, results[1].track_id} == {"calypso-1", "calypso-2"}  # the two share the best set
    assert results[0].descriptor_set == ("steel drums", "tropical", "upbeat", "calypso")
    assert "steel drums" in results[0].matched_descriptors
    assert set(results[0].matched_descriptors) <= set(results[0].descriptor_set)
    assert all(r.metadata == rec.catalog.track(r.track_id).metadata for r in results)
    assert results[0].metadata["artist"] == "The Pans"
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and len({r.track_id for r in results}) == 5
    assert results[2].track_id == "reggae"  # the other tropical track comes next


def test_to_dict_holds_every_field_as_json_values(rec: Recommender) -> None:
    r = rec.recommend("I'd love upbeat tropical music with steel drums", k=1)[0]
    d = r.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(r)]  # a new field must reach the JSON too
    assert json.loads(json.dumps(d)) == d
    assert d["descriptor_set"] == list(r.descriptor_set) and d["metadata"] == dict(r.metadata)
    assert d["track_id"] == r.track_id and d["score"] == r.score and d["intent"] is None


def test_a_track_with_several_sets_appears_once_by_its_best_set(rec: Recommender) -> None:
    results = rec.recommend("boom bap drums with scratching", k=20)
    assert len(results) == len(rec.catalog) == 12
    assert results[0].track_id == "hiphop" and results[0].descriptor_set == ("boom bap", "drums", "scratching")
    assert [r.track_id for r in results].count("hiphop") == 1


def test_filters(rec: Recommender) -> None:
    request = "upbeat tropical music with steel drums"
    ids = [r.track_id for r in rec.recommend(request, k=3, exclude_tracks=["calypso-1", "calypso-2"])]
    assert ids[0] == "reggae" and not {"calypso-1", "calypso-2"} & set(ids)
    assert {r.track_id for r in rec.recommend(request, k=5, require_descriptors=["Male Vocal "])} == {"hiphop", "country"}
    excluded = rec.recommend(request, k=20, exclude_descriptors=["tropical", "slow"])
    assert not {"calypso-1", "calypso-2", "reggae", "ballad", "ambient"} & {r.track_id for r in excluded}
    assert len(excluded) == 12 - 5
    assert rec.recommend(request, k=3, require_descriptors=["banjo"], exclude_descriptors=["banjo"]) == []
    with pytest.raises(InvalidRequestError, match="unknown track id 'no-such-track'"):
        rec.recommend(request, exclude_tracks=["calypso-1", "no-such-track"])
    with pytest.raises(InvalidRequestError, match="unknown descriptor.*'kazoo'"):
        rec.recommend(request, require_descriptors=["kazoo"])


@pytest.mark.parametrize("request_, match", [
    ("", "empty"), ("   \n\t", "empty"), (None, "must be a string"), (42, "must be a string"),
    (["steel drums"], "must be a string"), (b"steel drums", "must be a string"),
])
def test_bad_requests(rec: Recommender, request_, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        rec.recommend(request_)


@pytest.mark.parametrize("k, match", [
    (0, "positive"), (-3, "positive"), (2.0, "integer"), ("3", "integer"), (True, "integer"), (None, "integer"),
])
def test_bad_k(rec: Recommender, k, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        rec.recommend("steel drums", k=k)


def test_numpy_integer_k_is_accepted(rec: Recommender) -> None:
    assert len(rec.recommend("steel drums", k=np.int64(2))) == 2


def test_long_request_is_read_whole_without_a_warning(rec: Recommender) -> None:
    request = "tropical steel drums " * 200  # 602 tokens: read in windows (tests/serve/test_long_requests.py)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = rec.recommend(request, k=1)
        rec.recommend("tropical steel drums", k=1)
    assert results[0].track_id.startswith("calypso")


def test_concurrent_calls_match_sequential_ones(rec: Recommender) -> None:
    sequential = [rec.recommend(r, k=5) for r in REQUESTS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda r: rec.recommend(r, k=5), REQUESTS * 3))
    assert concurrent == sequential * 3


def test_search_takes_an_embedded_request(rec: Recommender) -> None:
    query = rec.encoder.encode(["smooth jazz for a lounge"])[0]
    assert rec.search(query, k=3) == rec.recommend("smooth jazz for a lounge", k=3)
    with pytest.raises(InvalidRequestError, match="shape"):
        rec.search(query[:10])


def test_index_is_cached_and_reused(rec: Recommender, catalog: Catalog, home: Path) -> None:
    folder = index_cache_dir("all-MiniLM-L6-v2", catalog.fingerprint())
    assert folder.parent == home / "indexes" and rec.index.path == folder
    again = Recommender(rec.encoder, catalog)
    assert again.index.path == folder and again.index is not rec.index
    assert again.recommend(REQUESTS[1], k=3) == rec.recommend(REQUESTS[1], k=3)


def test_catalog_without_descriptors(encoder: TextEncoder, tmp_path: Path) -> None:
    path = tmp_path / "cat.jsonl"
    pd.DataFrame({"track_id": ["a", "b"], "descriptors": [[], []]}).to_json(path, orient="records", lines=True)
    with pytest.raises(DataError, match="has no descriptors"):
        Recommender(encoder, path)


def test_truncated_index_is_refused_or_rebuilt(rec: Recommender, catalog: Catalog, tmp_path: Path) -> None:
    folder = rec.index.save(tmp_path / "idx")
    (folder / FAISS_FILE).write_bytes((folder / FAISS_FILE).read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match=FAISS_FILE):
        Recommender(rec.encoder, catalog, index_dir=folder, auto_rebuild=False)
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = Recommender(rec.encoder, catalog, index_dir=folder)
    assert rebuilt.recommend(REQUESTS[0], k=2) == rec.recommend(REQUESTS[0], k=2)
    assert DescriptorIndex.load(folder).texts == rec.index.texts


def test_index_of_another_model_is_refused_or_rebuilt(rec: Recommender, catalog: Catalog, tmp_path: Path) -> None:
    other = TextEncoder(rec.encoder.model)
    other.name = "another-model"
    other.probe = -rec.encoder.probe  # an encoder whose weights differ
    folder = DescriptorIndex.from_embeddings(rec.encoder.encode(rec.index.texts), rec.index.texts, other,
                                             fingerprint=catalog.fingerprint()).save(tmp_path / "idx")
    with pytest.raises(StaleIndexError, match="built with model 'another-model'"):
        Recommender(rec.encoder, catalog, index_dir=folder, auto_rebuild=False)
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = Recommender(rec.encoder, catalog, index_dir=folder)
    assert DescriptorIndex.load(folder).model_name == "all-MiniLM-L6-v2"
    assert rebuilt.recommend(REQUESTS[2], k=3) == rec.recommend(REQUESTS[2], k=3)
    with pytest.raises(StaleIndexError, match="another catalog"):
        Recommender(rec.encoder, Catalog(list(catalog)[:-1]), index=rec.index)


def test_fusion_adds_lexical_matches(rec: Recommender, catalog: Catalog) -> None:
    fused = Recommender(rec.encoder, catalog, fusion=True)
    results = fused.recommend("something with zorblax in it", k=3)
    assert results[0].track_id == "zorblax"
    assert all(0 < r.score <= 2 / 61 + 1e-6 for r in results)  # reciprocal-rank fusion of two rankings
    assert fused.recommend(REQUESTS[0], k=2)[0].track_id.startswith("calypso")


def test_fusion_on_a_large_catalog_re_ranks_the_dense_candidates(rec: Recommender, catalog: Catalog,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from melscribe.retrieval.fusion import FusionConfig

    monkeypatch.setattr(ranking, "LEXICAL_UNION_MAX", 0)  # every catalog counts as large
    weighted = FusionConfig(method="weighted", weights=(1.0, 0.5))
    fused = Recommender(rec.encoder, catalog, index=rec.index, fusion=weighted)
    request = "upbeat music with a piano"
    candidates = min(len(rec.index), ranking.MIN_CANDIDATES)
    dense, rows = (a[0] for a in rec.index.search(rec.encoder.encode([request])[0], candidates))
    lexical = fused._lexical.score([request])[0][rows]
    expected = rows[np.argsort(-weighted.fuse([dense[None, :], lexical[None, :]])[0], kind="stable")]
    got = list(dict.fromkeys(r.descriptor_set for r in fused.recommend(request, k=6, intent=False)))  # a set per row
    assert len(got) >= 4 and got == [fused._ranker.rows.descriptors(i) for i in expected[:len(got)]]


def test_module_level_recommend_builds_one_default_recommender(monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder,
                                                               catalog: Catalog) -> None:
    built = []

    def fake_recommender(*args, index=None, fusion=None, **kwargs):
        built.append(fusion)
        return Recommender(encoder, catalog, index=index, fusion=fusion)

    monkeypatch.setattr(recommend_mod, "_defaults", {})
    monkeypatch.setattr(recommend_mod, "Recommender", fake_recommender)
    first = recommend_mod.recommend("dark techno", k=2)
    assert first[0].track_id == "techno"
    assert recommend_mod.recommend("sad piano", k=1, exclude_tracks=["ambient"])[0].track_id == "ballad"
    assert built == [None]
    # fusion= builds one more recommender sharing the default's index; the packaged model has no tuned fusion,
    # so True means untuned RRF (scores are reciprocal ranks) and False dense only (cosines)
    fused = recommend_mod.recommend("dark techno", k=2, fusion=True)
    assert fused[0].track_id == "techno" and fused[0].score <= 2 / 61 + 1e-6
    assert recommend_mod.recommend("dark techno", k=2, fusion=True) == fused
    assert recommend_mod.recommend("dark techno", k=2, fusion=False) == first
    assert built == [None, True, False]
    assert recommend_mod._defaults[True].index is recommend_mod._defaults[None].index


def test_musiccaps_sample_captions_find_their_own_clips(encoder: TextEncoder, real_data_dir: Path) -> None:
    full = Catalog.from_musiccaps(real_data_dir)
    sample = Catalog(full.tracks[:200], source="MusicCaps (first 200)")
    rec = Recommender(encoder, sample)
    from melscribe.data import load_musiccaps

    captions = {r.track_id: r.text for r in load_musiccaps(real_data_dir)[:200]}
    hits = [tid in {r.track_id for r in rec.recommend(captions[tid], k=10)} for tid in list(captions)[:40]]
    assert np.mean(hits) >= 0.6
    top = rec.recommend("a sad piano ballad", k=5, require_descriptors=["piano"])
    assert top and all("piano" in r.descriptor_set for r in top)
    assert top[0].metadata["url"].startswith("https://www.youtube.com/watch?v=")


def test_audio_only_tracks_are_reranked_by_audio(rec: Recommender, catalog: Catalog, tmp_path: Path) -> None:
    from melscribe.audio import joint as audio

    clap = tiny_clap(tmp_path / "clap")
    write_audio(tmp_path / "music")
    with pytest.warns(UserWarning, match="broken.wav"):
        mixed = catalog.with_audio_folder(tmp_path / "music", clap, top_k=3, cache_dir=tmp_path / "cache")
    both = Recommender(rec.encoder, mixed)
    results = both.recommend("calm piano", k=len(mixed))
    assert len(results) == len(mixed) == 15
    heard = [r for r in results if r.inferred]
    assert sorted(r.track_id for r in heard) == ["high.wav", "low.wav", "sub/noise.flac"]
    assert all(r.audio_score is not None for r in heard)
    assert [r.audio_score for r in heard] == sorted((r.audio_score for r in heard), reverse=True)
    texts = [both.index.texts[i] for i in both.index.search(both.encoder.encode(["calm piano"]), 5)[1][0]]
    sims = audio.rerank_by_audio(clap, texts, mixed.audio.embeddings)
    expected = {tid: float(s) for tid, s in zip(mixed.audio.track_ids, sims)}
    assert all(r.audio_score == pytest.approx(expected[r.track_id], abs=1e-5) for r in heard)
    plain = Recommender(rec.encoder, mixed, audio_rerank=False).recommend("calm piano", k=len(mixed))
    assert [r.inferred for r in plain] == [r.inferred for r in results]  # audio-only tracks keep their slots
    assert all(r.audio_score is None for r in plain)


def test_restrictive_filters_fall_back_to_an_exact_scan(rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = rec.recommend(REQUESTS[0], k=3, require_descriptors=["male vocal"], exclude_tracks=["country"])
    monkeypatch.setattr(ranking, "MIN_CANDIDATES", 1)
    monkeypatch.setattr(ranking, "CANDIDATES_PER_RESULT", 1)
    monkeypatch.setattr(ranking, "MAX_CANDIDATES", 4)
    scanned, allowed_rows = [], ranking.Ranker._allowed_rows
    monkeypatch.setattr(ranking.Ranker, "_allowed_rows", lambda self, f: scanned.append(1) or allowed_rows(self, f))
    got = rec.recommend(REQUESTS[0], k=3, require_descriptors=["male vocal"], exclude_tracks=["country"])
    assert scanned and got == expected and [r.track_id for r in got] == ["hiphop"]


def test_hnsw_index_gives_the_exact_answers_on_a_small_catalog(rec: Recommender, catalog: Catalog) -> None:
    hnsw = Recommender(rec.encoder, catalog, index_kind="hnsw")
    assert hnsw.index.kind == "hnsw" and hnsw.index.path != rec.index.path
    for request in REQUESTS:
        assert [r.track_id for r in hnsw.recommend(request, k=5)] == [r.track_id for r in rec.recommend(request, k=5)]


@pytest.fixture(scope="module")
def reranker():
    """The packaged MiniLM read as a cross-encoder with a fixed random one-logit head: real, deterministic logits."""
    import torch

    from melscribe.encoding.reranker import Reranker, load_cross_encoder

    ce = load_cross_encoder("all-MiniLM-L6-v2")
    head = ce.model.classifier
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(1)))
    return Reranker(ce, bf16=False)


def test_rerank_orders_the_top_sets_by_the_cross_encoder(rec: Recommender, catalog: Catalog, reranker) -> None:
    from melscribe.serve.catalog import set_text

    r = Recommender(rec.encoder, catalog, index=rec.index, reranker=reranker, intent=False)
    request = REQUESTS[0]
    plain = r.recommend(request, k=12)
    assert r.recommend(request, k=12, rerank=0) == plain and all(x.rerank_score is None for x in plain)
    everything = r.recommend(request, k=12, rerank=len(r.index))  # every set re-scored: the teacher's order
    logits = [x.rerank_score for x in everything]
    assert None not in logits and logits == sorted(logits, reverse=True)
    expected = reranker.score(request, [set_text(x.descriptor_set) for x in everything])
    assert np.allclose(logits, expected, atol=1e-5)
    assert {x.track_id for x in everything} == {x.track_id for x in plain}
    # only the best 3 sets re-scored: their tracks first in the teacher's order, the rest as before
    top3 = r.recommend(request, k=12, rerank=3)
    head = [x for x in top3 if x.rerank_score is not None]
    assert head == top3[:len(head)] and 3 <= len(head) < 12
    assert [x.rerank_score for x in head] == sorted(x.rerank_score for x in head)[::-1]
    assert [x.track_id for x in top3[len(head):]] == [x.track_id for x in plain if x.track_id not in
                                                      {h.track_id for h in head}]


def test_rerank_is_checked(rec: Recommender, catalog: Catalog, reranker) -> None:
    r = Recommender(rec.encoder, catalog, index=rec.index, reranker=reranker)
    for bad, match in [(-1, "between 0 and"), (recommend_mod.MAX_RERANK + 1, "between 0 and"), (True, "integer"),
                       (2.0, "integer")]:
        with pytest.raises(InvalidRequestError, match=match):
            r.recommend("steel drums", rerank=bad)
    with pytest.raises(InvalidRequestError, match="rerank needs a music cross-encoder"):
        rec.recommend("steel drums", rerank=5)  # the packaged MiniLM has no teacher beside it


def test_an_index_dir_holding_a_users_files_is_refused_untouched(rec: Recommender, catalog: Catalog,
                                                                 tmp_path: Path) -> None:
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(DataError, match=r"mydata holds files but no meta\.json"):
        Recommender(rec.encoder, catalog, index_dir=mine)
    with pytest.raises(DataError, match="is not a folder"):
        Recommender(rec.encoder, catalog, index_dir=mine / "notes.txt")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "precious"


def test_a_model_path_with_a_tilde_keeps_its_tuned_fusion(minilm, catalog: Catalog, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from melscribe.retrieval.fusion import FUSION_FILE, FusionConfig

    monkeypatch.setenv("HOME", str(tmp_path))
    minilm.save(str(tmp_path / "models" / "mine"))
    tuned = FusionConfig(method="weighted", weights=(1.0, 0.25), lexical="tfidf")
    (tmp_path / "models" / "mine" / FUSION_FILE).write_text(json.dumps(tuned.to_dict()))
    rec = Recommender("~/models/mine", catalog)
    assert rec.fusion == tuned and rec.encoder.source == str(tmp_path / "models" / "mine")
