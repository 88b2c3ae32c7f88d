import json

import pytest

from melscribe.evaluation.protocol import evaluate_scorer, evaluate_table, format_table, retrieve, write_results
from melscribe.pairs import PairDataset
from melscribe.retrieval.scorers import BM25Scorer, ModelUnavailableError, TfidfScorer


def small_dataset():
    return PairDataset(
        queries={"q1": "steel drums tropical", "q2": "sad piano", "q3": "unmatched request"},
        corpus={"d1": "steel drums, tropical", "d2": "sad, piano", "d3": "metal, guitar"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d-empty": 1}})


def test_retrieve_and_evaluate_counts_empty_as_miss():
    ds = small_dataset()
    run = retrieve(TfidfScorer(), ds, depth=2)
    assert run["q1"][0] == "d1" and len(run["q1"]) == 2
    metrics = evaluate_scorer(TfidfScorer(), ds, ["recall@1", "recall@10"])
    assert metrics["recall@1"] == metrics["recall@10"] == 2 / 3


def test_table_on_real_mc_matches_paper(real_data_dir, tmp_path):
    def broken():
        raise ModelUnavailableError("cannot load 'x': offline")

    result = evaluate_table({"TF-IDF": TfidfScorer, "BM25": BM25Scorer, "broken": broken}, ["MC"], seeds=[0],
                            data_dir=real_data_dir)
    r10 = result["rows"]["TF-IDF"]["MC"]["recall@10"]["mean"]
    assert 0.86 < r10 < 0.92
    assert result["skipped"] == {"broken": "cannot load 'x': offline"}
    md = format_table(result)
    assert "| TF-IDF |" in md and "89.4" in md and "skipped" in md
    md_path, js_path = write_results(result, tmp_path / "t", "title", "cmd")
    assert json.loads(js_path.read_text())["rows"]["BM25"]["MC"]["queries"] == 2361
    assert "Commit" in md_path.read_text()


CLIPS = [("a1", ["steel drums", "tropical", "upbeat"], "Steel drums play a tropical tune.", True),
         ("a2", ["sad", "piano", "ballad"], "A sad piano ballad.", True),
         ("a3", ["heavy metal", "distorted guitar"], "Loud heavy metal.", True),
         ("a4", ["sad", "piano", "ballad"], "Another sad piano ballad.", False),  # same list as a2: one document
         ("a5", ["jazz", "saxophone"], "Smooth jazz with saxophone.", False)]
REPHRASED = [(0, "upbeat tropical steel drums", "I'd like something tropical with steel drums"),
             (1, "a sad piano ballad", "play me a sad piano ballad"),
             (2, "heavy metal, distorted guitar", "something loud with distorted guitars")]


def tiny_data_dir(root):
    import csv

    from tiny_fixtures import write_musiccaps

    write_musiccaps(root, CLIPS)
    path = root / "lp-musiccaps-mc" / "mc_rephrased.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("caption_id", "caption", "caption_rephrased"), *REPHRASED])
    return root


def test_track_level_pairs_one_document_per_distinct_list(tmp_path):
    from melscribe.evaluation.protocol import test_dataset
    from melscribe.pairs import doc_id

    ds = test_dataset("track_MC_reco", data_dir=tiny_data_dir(tmp_path))
    assert sorted(ds.corpus.values()) == ["heavy metal, distorted guitar", "jazz, saxophone", "sad, piano, ballad",
                                          "steel drums, tropical, upbeat"]
    assert list(ds.queries.values()) == [r[2] for r in REPHRASED]
    assert [list(rel) for rel in ds.qrels.values()] == [[doc_id(", ".join(c[1]))] for c in CLIPS[:3]]
    assert list(test_dataset("track_MC", data_dir=tmp_path).queries.values()) == [r[1] for r in REPHRASED]


def test_recommend_is_evaluated_like_the_dense_scorer_over_distinct_lists(tmp_path, minilm):
    from melscribe.evaluation.protocol import TRACK_SPLITS, evaluate_recommender, test_dataset
    from melscribe.retrieval.scorers import DenseScorer
    from melscribe.serve.catalog import Catalog
    from melscribe.serve.recommend import Recommender

    root = tiny_data_dir(tmp_path)
    rec = Recommender(minilm, Catalog.from_musiccaps(root), index_dir=tmp_path / "index", fusion=False, intent=False)
    metrics = ["recall@1", "recall@3", "mrr@10"]
    for split in TRACK_SPLITS:
        expected = evaluate_scorer(DenseScorer(minilm), test_dataset(split, data_dir=root), metrics)
        assert evaluate_recommender(rec, split, root, metrics) == pytest.approx(expected)
    with pytest.raises(ValueError, match="track-level"):
        evaluate_recommender(rec, "MC", root)


def test_evaluate_exits_non_zero_when_a_named_scorer_cannot_run(real_data_dir, tmp_path, capsys):
    from melscribe.cli import main

    common = ["evaluate", "--splits", "MC", "--seeds", "0", "--data-dir", str(real_data_dir)]
    assert main(common + ["--scorer", "nosuch"]) == 2
    assert "unknown scorer 'nosuch'" in capsys.readouterr().err
    assert main(common + ["--scorer", "tfidf", "--scorer", f"dense:{tmp_path}/no-model"]) == 1
    out, err = capsys.readouterr()
    assert "TF-IDF" in out and f"scorer dense:{tmp_path}/no-model could not run" in err
