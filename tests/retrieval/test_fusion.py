"""Fusion methods on hand-computed scores, the stored configuration, and what serving reads."""

import json

import numpy as np
import pytest

from melscribe.errors import InvalidRequestError
from melscribe.retrieval.fusion import FUSION_FILE, FusionConfig, fuse, load_fusion, rank_matrix, reciprocal_rank_fusion, weighted_fusion
from melscribe.serve.recommend import resolve_fusion

DENSE = np.array([[0.9, 0.1, 0.5]], dtype=np.float32)
LEXICAL = np.array([[0.0, 1.0, 0.5]], dtype=np.float32)


def test_rank_matrix_breaks_ties_by_position():
    assert rank_matrix(DENSE).tolist() == [[1, 3, 2]]
    assert rank_matrix(np.array([[0.5, 0.5, 0.7]])).tolist() == [[2, 3, 1]]


def test_rrf_by_hand():
    # ranks: dense (1, 3, 2), lexical (3, 1, 2); k = 10, weights 1 and 2
    fused = reciprocal_rank_fusion([DENSE, LEXICAL], k=10, weights=[1.0, 2.0])
    expected = [1 / 11 + 2 / 13, 1 / 13 + 2 / 11, 1 / 12 + 2 / 12]
    assert fused[0].tolist() == pytest.approx(expected, rel=1e-6)


def test_weighted_by_hand():
    # z-scores per query: dense mean 0.5, sd 0.326599; lexical mean 0.5, sd 0.408248
    z_dense = (DENSE[0] - 0.5) / 0.32659863
    z_lex = (LEXICAL[0] - 0.5) / 0.40824829
    fused = weighted_fusion([DENSE, LEXICAL], [1.0, 0.5])
    assert fused[0].tolist() == pytest.approx((z_dense + 0.5 * z_lex).tolist(), rel=1e-4)


def test_fuse_dispatches_and_refuses_unknown_methods():
    assert np.array_equal(fuse([DENSE, LEXICAL], "rrf", [1, 1], 60), reciprocal_rank_fusion([DENSE, LEXICAL]))
    assert np.array_equal(fuse([DENSE, LEXICAL], "weighted", [1, 2]), weighted_fusion([DENSE, LEXICAL], [1, 2]))
    with pytest.raises(InvalidRequestError, match="unknown fusion method 'max'"):
        fuse([DENSE], "max")
    with pytest.raises(InvalidRequestError, match="unknown fusion method"):
        FusionConfig(method="max")


def test_config_round_trip_and_serving_reads_the_tuned_one(tmp_path):
    assert load_fusion(tmp_path) is None
    assert resolve_fusion(None, str(tmp_path)) is None            # no tuned fusion: dense only
    assert resolve_fusion(True, str(tmp_path)) == FusionConfig()  # asked for: untuned RRF over TF-IDF
    tuned = FusionConfig(method="weighted", weights=(1.0, 0.75), lexical="bm25", tuning={"queries": 3})
    (tmp_path / FUSION_FILE).write_text(json.dumps(tuned.to_dict()))
    assert load_fusion(tmp_path) == tuned and load_fusion(tmp_path).tuning == {"queries": 3}
    assert resolve_fusion(None, str(tmp_path)) == tuned
    assert resolve_fusion(True, str(tmp_path)) == tuned
    assert resolve_fusion(False, str(tmp_path)) is None
    (tmp_path / FUSION_FILE).write_text("{\"weights\": [1]}")
    with pytest.raises(InvalidRequestError, match="not a fusion configuration"):
        load_fusion(tmp_path)


def test_the_tuning_grid_by_hand():
    """One request over 11 descriptor sets; its relevant set d0 is last for the bi-encoder (rank 11, out of the
    top 10) and first for the lexical scorer. Every fusion of the grid lifts d0 into the top 10: weighted, since
    d0's z-score -1.58 + 3.16·w beats the weakest other set's -1.26 - 0.32·w once w > 1/11; RRF, since even at
    k=100, w=0.25, d0's 1/111 + 0.25/101 = 0.011484 beats the tenth set's 1/110 + 0.25/111 = 0.011343."""
    from melscribe.pairs import PairDataset
    from melscribe.train.fusion import LEXICAL_WEIGHTS, RRF_KS, grid_configs, grid_recall

    doc_ids = [f"d{i}" for i in range(11)]
    ds = PairDataset(queries={"q": "request"}, corpus={d: d for d in doc_ids}, qrels={"q": {"d0": 1}})
    dense = np.array([[0.0] + [11.0 - i for i in range(1, 11)]])
    lexical = np.array([[1.0] + [0.0] * 10])
    grid = grid_recall(dense, lexical, ds, doc_ids, ["q"])
    assert grid.pop("dense") == 0.0 and grid.pop("lexical") == 1.0
    assert grid == {label: 1.0 for label in grid_configs()}
    assert len(grid) == len(LEXICAL_WEIGHTS) * (len(RRF_KS) + 1)
    assert grid_configs()["rrf(k=60) w=1.0"] == FusionConfig()  # the untuned default is in the grid
    assert grid_configs("bm25")["weighted w=0.25"] == FusionConfig("weighted", 60, (1.0, 0.25), "bm25")
