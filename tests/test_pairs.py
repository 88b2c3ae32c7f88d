import random

import pytest

from melscribe.data import Record
from melscribe.pairs import (EMPTY_DOC_ID, build_pairs, read_beir, sample_descriptor_set, split_sentences,
                             verbatim_descriptors, write_beir)
from melscribe.errors import DataError


def rec(tid, text, descs):
    return Record(tid, text, tuple(descs), "test", "unit")


RECORDS = [
    rec("t1", "A sad ballad with soft female vocal. Low quality recording with piano.",
        ["sad", "ballad", "soft female vocal", "low quality", "piano", "strings", "emotional"]),
    rec("t2", "An upbeat tropical song with steel drums.", ["upbeat", "tropical", "steel drums", "calypso", "fun"]),
    rec("t3", "Nothing matches here.", ["jazz", "saxophone"]),
]


def test_split_sentences_on_dot_space():
    assert split_sentences("One. Two. Three.") == ["One", "Two", "Three."]
    assert split_sentences("No split.e.g. here") == ["No split.e.g", "here"]


def test_verbatim_case_insensitive():
    ematch, others = verbatim_descriptors("Low Quality piano", ["low quality", "piano", "sad"])
    assert ematch == ["low quality", "piano"] and others == ["sad"]


def test_sample_bounds():
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        doc = sample_descriptor_set(rng, ["a", "b", "c"], ["x", "y"])
        items = doc.split(", ")
        assert len(set(items)) == len(items)
        seen.add((sum(i in "abc" for i in items), sum(i in "xy" for i in items)))
    # every k1 in [1, 3] and k2 in [0, min(3, 2)] is drawn, and nothing else
    assert seen == {(k1, k2) for k1 in (1, 2, 3) for k2 in (0, 1, 2)}
    assert sample_descriptor_set(rng, [], ["x"]) == ""


def test_same_seed_same_pairs_and_ids():
    a, b = build_pairs(RECORDS, seed=3), build_pairs(RECORDS, seed=3)
    assert a.queries == b.queries and a.corpus == b.corpus and a.qrels == b.qrels


def test_different_seed_different_pairs():
    texts = [rec(f"t{i}", "sad piano ballad with strings and soft vocal", ["sad", "piano", "ballad", "strings",
                                                                         "soft vocal", "lofi", "calm"])
             for i in range(20)]
    a, b = build_pairs(texts, seed=0), build_pairs(texts, seed=1)
    assert set(a.queries) != set(b.queries)
    assert set(a.corpus.values()) != set(b.corpus.values())


def test_structure_and_empty_documents():
    ds = build_pairs(RECORDS, seed=0)
    assert list(ds.queries.values()) == ["A sad ballad with soft female vocal", "Low quality recording with piano.",
                                         "An upbeat tropical song with steel drums.", "Nothing matches here."]
    empty_q = [q for q, t in ds.queries.items() if t == "Nothing matches here."][0]
    assert ds.qrels[empty_q] == {EMPTY_DOC_ID: 1} and EMPTY_DOC_ID not in ds.corpus
    for q, rel in ds.qrels.items():
        for d in rel:
            if d != EMPTY_DOC_ID:
                assert any(x in ds.queries[q].lower() for x in ds.corpus[d].split(", "))
    dropped = build_pairs(RECORDS, seed=0, drop_empty=True)
    assert len(dropped) == 3 and "Nothing matches here." not in dropped.queries.values()


def test_docs_per_query_and_ids_from_content():
    ds = build_pairs(RECORDS, seed=0, docs_per_query=3)
    assert all(1 <= len(rel) <= 3 for rel in ds.qrels.values())
    assert all(d.startswith("d-") and q.startswith("q-") for q, rel in ds.qrels.items() for d in rel)
    with pytest.raises(DataError):
        build_pairs(RECORDS, docs_per_query=0)


def test_beir_round_trip(tmp_path):
    ds = build_pairs(RECORDS, seed=0, docs_per_query=2)
    write_beir(ds, tmp_path / "beir", split="test")
    back = read_beir(tmp_path / "beir", split="test")
    assert back.queries == ds.queries and back.corpus == ds.corpus and back.qrels == ds.qrels
    assert back.query_tracks == ds.query_tracks
    assert (tmp_path / "beir" / "qrels" / "test.tsv").read_text().startswith("query-id\tcorpus-id\tscore\n")


def test_beir_errors(tmp_path):
    with pytest.raises(DataError, match="corpus.jsonl"):
        read_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\nnot json\n')
    with pytest.raises(DataError, match=r"corpus.jsonl:2"):
        read_beir(tmp_path)


def test_real_mc_test_pairs(real_data_dir):
    from melscribe.data import load_mc_test

    ds = build_pairs(load_mc_test(real_data_dir), seed=0)
    assert len(ds.queries) == 2361 and 2200 < len(ds.corpus) <= 2361
