"""The serving benchmark (experiment code in experiments/benchmark.py) on a small real run: 60 MusicCaps
clips, 2,000 synthetic sets, two index kinds, one HTTP level of a handful of requests against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from melscribe.encoding.encoder import TextEncoder

from benchmark import run_benchmark, synthetic_sets, targets, write_report


def test_synthetic_sets_are_normalised_mixtures_of_distinct_descriptors() -> None:
    vocabulary = np.eye(8, dtype=np.float32)
    emb, members = synthetic_sets(50, vocabulary, [2, 3], seed=0)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    for e, m in zip(emb, members):
        assert len(m) in (2, 3) and len(set(m.tolist())) == len(m)
        assert set(np.flatnonzero(e > 0).tolist()) <= set(m.tolist())  # weights only on its own descriptors
    again, _ = synthetic_sets(50, vocabulary, [2, 3], seed=0)
    np.testing.assert_array_equal(emb, again)


@pytest.mark.subprocess
def test_small_benchmark_reports_every_stage(real_data_dir: Path, encoder: TextEncoder, tmp_path: Path) -> None:
    result = run_benchmark(real_data_dir, model=encoder, n_requests=8, kinds=("ivf", "hnsw", "ivf"), sizes=(2000,),
                           musiccaps_limit=60, http_levels=(2,), http_requests=6, work_dir=tmp_path / "work")
    names = [(s["name"], s["index_kind"], s["backend"]) for s in result["stages"]]
    assert names == [("MusicCaps (first 60)", "flat", "torch"), ("synthetic 2,000", "ivf", "torch"),
                     ("synthetic 2,000", "hnsw", "torch")]
    ivf, hnsw = result["stages"][1:]  # a kind asked for twice is built once
    assert (ivf["primary"], hnsw["primary"]) == (True, False)
    assert ivf["descriptor_sets"] == hnsw["descriptor_sets"] <= 2000
    sweep = ivf["ann"]["sweep"]
    assert sweep["parameter"] == "nprobe" and [r["nprobe"] for r in sweep["rows"]] == [16, 32]
    assert sweep["rows"][-1]["recall"] == 1.0  # all 32 lists scanned and re-scored exactly: exact search
    assert hnsw["ann"]["sweep"]["parameter"] == "efSearch"
    for stage in result["stages"]:
        lat = stage["latency"]
        assert lat["requests"] == 8 and lat["encode"]["p50_ms"] > 0
    assert result["encoding"]["torch"]["batch_sets_per_s"] > 0
    (level,) = result["http"]["torch"]
    assert level["concurrency"] == 2 and level["ok"] == level["requests"] == 6 and level["statuses"] == {"200": 6}
    assert level["p50_ms"] > 0 and level["throughput_rps"] > 0
    assert (tmp_path / "work" / "server-torch.log").is_file()
    assert [t[0] for t in targets(result)] == [
        "ANN recall@10, synthetic 2,000 (ivf)", "recommend() p50 (ms), synthetic 2,000 (ivf)",
        "recommend() p50 (ms), MusicCaps (first 60)"]  # no level 8: no HTTP target
    md, js, png = write_report(result, tmp_path / "bench", "## Notes\n\nhand-written")
    report = md.read_text()
    assert "| synthetic 2,000 | hnsw | torch |" in report and "nprobe 32: recall 1.0" in report
    assert "| torch | 2 | 6 | 6 |" in report and "![latency per backend and size](bench.png)" in report
    assert report.rstrip().endswith("hand-written")
    assert png.stat().st_size > 1000
    assert json.loads(js.read_text())["kinds"] == ["ivf", "hnsw", "ivf"]


@pytest.mark.subprocess
def test_the_library_does_not_import_psutil() -> None:
    code = ("import sys, melscribe.cli, melscribe.serve.recommend, melscribe.serve.api, melscribe.serve.commands; "
            "print('psutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
