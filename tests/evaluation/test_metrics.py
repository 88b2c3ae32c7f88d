import math

import pytest

from melscribe.evaluation.metrics import aggregate, evaluate_run, mean_std, query_metric

# Hand-worked example. Query q1 has relevant {a, c}; ranking: x a y c z.
#   recall@1 = 0, recall@5 = 2/2 = 1, recall@2 = 1/2
#   mrr@10 = 1/2 (first hit at rank 2)
#   ndcg@10: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161; IDCG = 1 + 1/log2(3) = 1.63093 → 0.65093
#   map@100: precisions at hits 1/2 and 2/4 → (0.5 + 0.5) / 2 = 0.5
# Query q2 has relevant {b, gone} ("gone" is absent from the corpus, like the paper's empty document);
# ranking: b x → recall@10 = 1/2, mrr = 1, ndcg: DCG = 1, IDCG = 1 + 1/log2(3) → 0.61315, map = (1/1)/2 = 0.5
RUN = {"q1": ["x", "a", "y", "c", "z"], "q2": ["b", "x"]}
QRELS = {"q1": {"a": 1, "c": 1}, "q2": {"b": 1, "gone": 1}}


def test_recall():
    assert query_metric("recall@1", RUN["q1"], QRELS["q1"]) == 0
    assert query_metric("recall@2", RUN["q1"], QRELS["q1"]) == 0.5
    assert query_metric("recall@5", RUN["q1"], QRELS["q1"]) == 1
    assert query_metric("recall@10", RUN["q2"], QRELS["q2"]) == 0.5


def test_mrr():
    assert query_metric("mrr@10", RUN["q1"], QRELS["q1"]) == 0.5
    assert query_metric("mrr@1", RUN["q1"], QRELS["q1"]) == 0
    assert query_metric("mrr@10", RUN["q2"], QRELS["q2"]) == 1


def test_ndcg():
    assert query_metric("ndcg@10", RUN["q1"], QRELS["q1"]) == pytest.approx(0.65093, abs=1e-5)
    assert query_metric("ndcg@10", RUN["q2"], QRELS["q2"]) == pytest.approx(1 / (1 + 1 / math.log2(3)), abs=1e-9)


def test_map():
    assert query_metric("map@100", RUN["q1"], QRELS["q1"]) == 0.5
    assert query_metric("map@100", RUN["q2"], QRELS["q2"]) == 0.5
    assert query_metric("map@3", RUN["q1"], QRELS["q1"]) == 0.25


def test_evaluate_run_means_and_missing_query():
    r = evaluate_run({"q1": RUN["q1"]}, QRELS, ["recall@5", "mrr@10"])
    assert r == {"recall@5": 0.5, "mrr@10": 0.25}


def test_bad_metric_and_empty():
    with pytest.raises(ValueError, match="unknown metric"):
        query_metric("precision@5", [], {"a": 1})
    with pytest.raises(ValueError, match="unknown metric"):
        query_metric("recall@0", [], {"a": 1})
    with pytest.raises(ValueError, match="no queries"):
        evaluate_run({}, {})


def test_mean_std_and_aggregate():
    assert mean_std([1.0]) == (1.0, 0.0)
    m, s = mean_std([1.0, 2.0, 3.0])
    assert m == 2.0 and s == 1.0
    agg = aggregate([{"recall@10": 0.8}, {"recall@10": 0.9}])
    assert agg["recall@10"]["mean"] == pytest.approx(0.85)
