import json

from melscribe.evaluate import evaluate_scorer, evaluate_table, format_table, retrieve, write_results
from melscribe.pairs import PairDataset
from melscribe.scorers import BM25Scorer, ModelUnavailableError, TfidfScorer


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
