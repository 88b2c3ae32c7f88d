"""The Milvus store (``melscribe/serve/milvus_store.py``) on a real Milvus Lite, its database in a temporary
folder: the same rankings as the faiss index, filters inside the engine, stale, incomplete and foreign
collections, concurrent readers, and ``--store`` on the command line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from melscribe.errors import IndexCorruptError, InvalidRequestError, StaleIndexError
from melscribe.serve.catalog import Catalog
from melscribe.serve.milvus_store import MilvusStore, connect, filter_expression
from melscribe.serve.recommend import Recommender
from melscribe.serve.store import SetFilter, parse_store

from serve_support import write_catalog


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, encoder, catalog):
    """A Milvus recommender over the small catalog, and its database file."""
    db = tmp_path_factory.mktemp("milvus") / "small.db"
    return Recommender(encoder, catalog, store=f"milvus:{db}", fusion=True), db


def test_store_specs_are_parsed_and_bad_ones_named() -> None:
    assert parse_store(None) == parse_store("faiss") == ("faiss", None)
    assert parse_store("milvus:/data/m.db") == ("milvus", "/data/m.db")
    assert parse_store("milvus://10.0.0.5:19530") == ("milvus", "http://10.0.0.5:19530")
    for bad in ("milvus:/data/m.sqlite", "milvus://", "redis://x", "milvus://host:1/path"):
        with pytest.raises(InvalidRequestError, match="--store"):
            parse_store(bad)


def test_filters_become_engine_expressions_with_strings_escaped() -> None:
    assert filter_expression(None) == filter_expression(SetFilter()) == ""
    expr = filter_expression(SetFilter(exclude=frozenset({'say "hi"', "metal"}), require=frozenset({"a\\b"})))
    assert expr == ('not array_contains_any(descriptors, ["metal", "say \\"hi\\""]) and '
                    'array_contains_all(track_descriptors, ["a\\\\b"])')


def test_milvus_lite_filters_are_like_on_the_tags_fields_with_wildcards_escaped() -> None:
    where = SetFilter(exclude=frozenset({"metal", "100%_x"}), require=frozenset({"a\\b", "rap"}))
    assert filter_expression(where, lite=True) == (
        'not (tags like "%, 100\\\\%\\\\_x, %" or tags like "%, metal, %") and '
        'track_tags like "%, a\\\\\\\\b, %" and track_tags like "%, rap, %"')
    assert filter_expression(None, lite=True) == filter_expression(SetFilter(), lite=True) == ""


@pytest.mark.parametrize("budget", [10**9, 0], ids=["in-the-engine", "excluded-by-the-store"])
def test_a_filtered_search_keeps_the_rows_of_an_unfiltered_search_then_filtered(tmp_path: Path, encoder, budget,
                                                                                 monkeypatch) -> None:
    """Milvus Lite's filter (``like`` on the tags fields) keeps only allowed rows, exactly those that searching
    everything and filtering the rows here keeps; ``like``'s wildcards in a descriptor match only themselves. The
    same when the exclusion is over Lite's budget and the store drops the excluded rows of a larger search."""
    from melscribe.serve import milvus_store

    monkeypatch.setattr(milvus_store, "LITE_FILTER_BUDGET", budget)
    texts = ["a_b, drums", "axb, drums", "100%, drums, piano", "1000, drums", "drums, piano, jazz", "metal, guitar",
             "guitar, a_b", "piano", "rap, drums", "jazz, a\\b, drums"]
    tracks = [t.split(", ") + (["rap"] if i % 3 == 0 else []) for i, t in enumerate(texts)]
    vocabulary = sorted({d for t in tracks for d in t})
    store = MilvusStore.build(str(tmp_path / "f.db"), texts, encoder, fingerprint="f", vocabulary=vocabulary,
                              track_descriptors=tracks)
    assert store.lite and store.meta["index"] == "FLAT"
    q = encoder.encode(["drums and piano"])[0]
    all_scores, all_rows = store.search(q, len(texts))
    for where in (SetFilter(exclude=frozenset({"a_b"})), SetFilter(exclude=frozenset({"100%", "metal"})),
                  SetFilter(require=frozenset({"rap"})), SetFilter(exclude=frozenset({"a\\b"}), require=frozenset({"drums"})),
                  SetFilter(exclude=frozenset({"piano"}), require=frozenset({"rap", "drums"}))):
        allowed = [i for i in range(len(texts)) if not where.exclude & set(texts[i].split(", "))
                   and where.require <= set(tracks[i])]
        expected = [r for r in all_rows[0].tolist() if r in allowed]
        scores, rows = store.search(q, 4, where=where)
        got = [r for r in rows[0].tolist() if r >= 0]
        assert got == expected[:4], where
        np.testing.assert_allclose(scores[0][:len(got)], all_scores[0][[all_rows[0].tolist().index(r) for r in got]],
                                   atol=1e-6)
    assert "axb, drums" in [texts[r] for r in store.search(q, 10, where=SetFilter(exclude=frozenset({"a_b"})))[1][0]]


def test_the_store_holds_what_the_faiss_index_holds(small_store, rec) -> None:
    milvus, _ = small_store
    store, index = milvus.index, rec.index
    assert store.kind == "milvus" and store.texts == index.texts and store.vocabulary == index.vocabulary
    rows = np.arange(len(index))
    np.testing.assert_array_equal(store.vectors(rows[::-1]), index.vectors(rows[::-1]))
    np.testing.assert_array_equal(store.vocabulary_embeddings, index.vocabulary_embeddings)
    q = rec.encoder.encode(["tropical steel drums"])[0]
    got, want = store.search(q, 5), index.search(q, 5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    assert store.info()["sparse"] == "tfidf" and store.info()["index"] == "FLAT"


def test_filters_are_evaluated_by_the_engine(small_store) -> None:
    milvus, _ = small_store
    store = milvus.index
    q = milvus.encoder.encode(["tropical steel drums"])[0]
    _, rows = store.search(q, 3)
    assert any("tropical" in store.texts[r].split(", ") for r in rows[0])
    _, rows = store.search(q, 5, where=SetFilter(exclude=frozenset({"tropical"})))
    assert len(rows[0]) == 5 and not any("tropical" in store.texts[r].split(", ") for r in rows[0])
    # required: by the descriptors of the tracks carrying a set (the hip-hop track has two sets)
    _, rows = store.search(q, 5, where=SetFilter(require=frozenset({"rap", "scratching"})))
    assert sorted(store.texts[r] for r in rows[0] if r >= 0) == ["boom bap, drums, scratching", "hip hop, rap, male vocal"]
    terms, weights = milvus._lexical.query_vector("steel drums")
    scores, rows = store.lexical_search(terms, weights, 10)
    np.testing.assert_allclose(scores[0], milvus._lexical.score_rows("steel drums", rows[0]), atol=1e-6)
    words = lambda text: set(text.replace(",", " ").split())  # noqa: E731
    assert {store.texts[r] for r in rows[0]} == {t for t in store.texts if words(t) & {"steel", "drums"}}
    assert store.texts[rows[0][0]] == "steel drums, tropical, upbeat, calypso"


def test_recommendations_through_milvus_equal_the_faiss_ones(small_store, encoder, catalog, home) -> None:
    milvus, _ = small_store
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        faiss = Recommender(encoder, catalog, fusion=True)
    cases = [("upbeat tropical steel drums", {}), ("something calm but no piano", {}),
             ("music for a party", {"exclude_descriptors": ["tropical"]}),
             ("drums", {"require_descriptors": ["rap"]}), ("guitar music", {"exclude_tracks": ["metal"]})]
    for request, options in cases:
        a = [r.to_dict() for r in milvus.recommend(request, 5, **options)]
        b = [r.to_dict() for r in faiss.recommend(request, 5, **options)]
        assert [r["track_id"] for r in a] == [r["track_id"] for r in b], request
        assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=1e-5)
        assert milvus.recommend(request, 5, **options).low_confidence == faiss.recommend(request, 5, **options).low_confidence


def test_concurrent_readers_get_the_answers_of_one_reader(small_store) -> None:
    milvus, _ = small_store
    requests = ["steel drums", "sad piano", "no vocals please", "dark techno but not fast", "jazz lounge"] * 4
    expected = [[r.track_id for r in milvus.recommend(q, 4)] for q in requests]
    got: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def read(i: int) -> None:
        try:
            got[i] = [r.track_id for r in milvus.recommend(requests[i], 4)]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and [got[i] for i in range(len(requests))] == expected


def test_a_stale_store_is_rebuilt_or_refused(tmp_path: Path, encoder) -> None:
    db = tmp_path / "m.db"
    first = Catalog.from_file(write_catalog(tmp_path / "a.csv"))
    from serve_support import ROWS

    second = Catalog.from_file(write_catalog(tmp_path / "b.csv", ROWS[:6]))
    Recommender(encoder, first, store=f"milvus:{db}", intent=False)
    with pytest.raises(StaleIndexError, match="another catalog"):
        Recommender(encoder, second, store=f"milvus:{db}", auto_rebuild=False, intent=False)
    with pytest.warns(UserWarning, match="another catalog.*building it"):
        rebuilt = Recommender(encoder, second, store=f"milvus:{db}", intent=False)
    assert len(rebuilt.index) == len(second.descriptor_sets)
    assert MilvusStore.open(str(db)).fingerprint == second.fingerprint()
    # a build killed midway leaves no identity: refused without auto_rebuild, rebuilt with it
    client = connect(str(db))
    client.drop_collection("melscribe_meta")
    with pytest.raises(IndexCorruptError, match="incomplete build"):
        Recommender(encoder, second, store=f"milvus:{db}", auto_rebuild=False, intent=False)
    with pytest.warns(UserWarning, match="incomplete build"):
        assert len(Recommender(encoder, second, store=f"milvus:{db}", intent=False).index) == len(second.descriptor_sets)


def test_collections_melscribe_did_not_make_are_refused_untouched(tmp_path: Path, encoder, catalog) -> None:
    from pymilvus import DataType

    db = tmp_path / "theirs.db"
    client = connect(str(db))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type="IP")
    client.create_collection("melscribe_sets", schema=schema, index_params=index)
    client.insert("melscribe_sets", [{"pk": 1, "embedding": [0.1, 0.2, 0.3, 0.4]}])
    with pytest.raises(InvalidRequestError, match="melscribe_sets were not made by melscribe"):
        Recommender(encoder, catalog, store=f"milvus:{db}", intent=False)
    assert client.has_collection("melscribe_sets") and client.get_collection_stats("melscribe_sets")["row_count"] == 1


def test_store_on_the_command_line(tmp_path: Path, catalog_file: Path, capsys) -> None:
    from melscribe.cli import main

    db = tmp_path / "cli.db"
    source = ["--catalog", str(catalog_file), "--backend", "torch", "--store", f"milvus:{db}"]
    assert main(["index", "build", *source]) == 0
    assert "Milvus store of 12 descriptor sets (12 tracks)" in capsys.readouterr().out
    assert main(["index", "info", *source]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "milvus" and info["descriptor_sets"] == 12 and info["path"] == str(db)
    assert main(["recommend", "steel drums on the beach", "-k", "2", "--json", *source]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["track_id"] for r in out["results"]] == ["calypso-1", "calypso-2"]
    with pytest.raises(SystemExit):
        main(["recommend", "x", "--store", "milvus:not-a-db.txt"])
    assert "a Milvus Lite database is a file named *.db" in capsys.readouterr().err


def test_milvus_ranks_as_faiss_on_musiccaps(real_data_dir: Path, encoder, tmp_path: Path) -> None:
    """The acceptance of issue 23: through Milvus Lite the same top 10 as the faiss index on MusicCaps (both
    exact), with fusion, intent and filters."""
    from melscribe.data import load_musiccaps

    full = Catalog.from_musiccaps(real_data_dir)
    faiss = Recommender(encoder, full, index_dir=tmp_path / "faiss", fusion=True)
    milvus = Recommender(encoder, full, store=f"milvus:{tmp_path / 'mc.db'}", fusion=True)
    assert faiss.index.kind == "flat" and milvus.index.meta["index"] == "FLAT"
    captions = [r.text for r in load_musiccaps(real_data_dir, split="test")[:60]]
    requests = [(c, {}) for c in captions] + [
        ("relaxing music for a rainy evening but not jazz", {}), ("energetic workout music with no vocals", {}),
        ("rock songs", {"exclude_descriptors": ["male vocal"]}), ("happy songs", {"require_descriptors": ["piano"]})]
    overlap = []
    for request, options in requests:
        a = [r.track_id for r in milvus.recommend(request, 10, **options)]
        b = [r.track_id for r in faiss.recommend(request, 10, **options)]
        overlap.append(len(set(a) & set(b)) / max(1, len(b)))
    assert np.mean(overlap) >= 0.99, overlap
