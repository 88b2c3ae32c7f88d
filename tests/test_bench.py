"""The serving benchmark on a small real run: 300 MusicCaps clips, 3,000 synthetic sets, two index kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melscribe.serve.bench import run_benchmark, synthetic_sets, targets, write_report
from melscribe.serve.index import TextEncoder

from serve_support import text_encoder


@pytest.fixture(scope="module")
def encoder(minilm) -> TextEncoder:
    return text_encoder(minilm)


def test_synthetic_sets_are_normalised_mixtures_of_distinct_descriptors() -> None:
    vocabulary = np.eye(8, dtype=np.float32)
    emb, members = synthetic_sets(50, vocabulary, [2, 3], seed=0)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    for e, m in zip(emb, members):
        assert len(m) in (2, 3) and len(set(m.tolist())) == len(m)
        assert set(np.flatnonzero(e > 0).tolist()) <= set(m.tolist())  # weights only on its own descriptors
    again, _ = synthetic_sets(50, vocabulary, [2, 3], seed=0)
    np.testing.assert_array_equal(emb, again)


def test_small_benchmark_reports_every_stage(real_data_dir: Path, encoder: TextEncoder, tmp_path: Path) -> None:
    result = run_benchmark(real_data_dir, model=encoder, n_requests=12, kinds=("ivf", "hnsw", "ivf"), sizes=(3000,),
                           musiccaps_limit=300)
    names = [(s["name"], s["index_kind"]) for s in result["stages"]]
    assert names == [("MusicCaps (first 300)", "flat"), ("synthetic 3,000", "ivf"), ("synthetic 3,000", "hnsw")]
    ivf, hnsw = result["stages"][1:]  # a kind asked for twice is built once
    assert (ivf["primary"], hnsw["primary"]) == (True, False)
    assert ivf["descriptor_sets"] == hnsw["descriptor_sets"] <= 3000
    sweep = ivf["ann"]["sweep"]
    assert sweep["parameter"] == "nprobe" and [r["nprobe"] for r in sweep["rows"]] == [16, 32, 64]
    assert sweep["rows"][-1]["recall"] == 1.0  # all 64 lists scanned and re-scored exactly: exact search
    assert hnsw["ann"]["sweep"]["parameter"] == "efSearch"
    for stage in result["stages"]:
        lat = stage["latency"]
        assert lat["requests"] == 12 and lat["encode"]["p50_ms"] > 0
    assert [t[0] for t in targets(result)][0] == "ANN recall@10, synthetic 3,000 (ivf)"
    md, js = write_report(result, tmp_path / "bench", "## Notes\n\nhand-written")
    report = md.read_text()
    assert "| synthetic 3,000 | hnsw |" in report and "nprobe 64: recall 1.0" in report
    assert report.rstrip().endswith("hand-written")
    assert json.loads(js.read_text())["kinds"] == ["ivf", "hnsw", "ivf"]
