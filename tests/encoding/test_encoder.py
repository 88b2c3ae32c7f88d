"""Encoder backends: onnx equals torch (and its cache survives corruption), the static backend runs a static
student trained here for a few steps, stage ``fast`` publishes a loadable student, and the recommender and
scorers take a backend."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from melscribe.encoding.encoder import TextEncoder, encoder_name
from melscribe.encoding.models import STUDENT_DIR
from melscribe.errors import ModelUnavailableError, StaleIndexError
from melscribe.serve.index import DescriptorIndex, same_model

from serve_support import recommender_in, small_catalog

TEXTS = ["upbeat tropical music with steel drums", "x", "  Sad PIANO ballad; soft female vocal!  ",
         "ÉLECTRO française, café-concert, 90s", "heavy metal, distorted guitar, aggressive, fast drums",
         "a long request about " + "a fast aggressive heavy metal song with screaming vocals " * 40,
         "calm ambient synth pads for sleeping", "hip hop, boom bap, scratching", "🎸 guitar"]


@pytest.fixture(scope="module")
def torch_encoder(encoder: TextEncoder) -> TextEncoder:
    """The shared ``encoder`` (conftest), named for its backend beside :func:`onnx_encoder`."""
    return encoder


@pytest.fixture(scope="module")
def onnx_encoder(home: Path) -> TextEncoder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        return TextEncoder("all-MiniLM-L6-v2", backend="onnx")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_onnx_embeddings_equal_torch(torch_encoder: TextEncoder, onnx_encoder: TextEncoder) -> None:
    assert (onnx_encoder.dim, onnx_encoder.max_seq_length) == (torch_encoder.dim, torch_encoder.max_seq_length) == (384, 256)
    expected = torch_encoder.encode(TEXTS)
    for batch_size in (1, 4, 64):  # alone, in padded batches of mixed lengths, all at once (multi-threaded session)
        got = onnx_encoder.encode(TEXTS * 2, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (2 * len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert cosines(got, np.vstack([expected, expected])).min() >= 1 - 1e-4
    for text in TEXTS:
        assert onnx_encoder.token_count(text) == torch_encoder.token_count(text)
    assert onnx_encoder.token_count(TEXTS[5]) > 256  # the long request really is truncated
    assert same_model(onnx_encoder.probe, torch_encoder.probe)
    assert onnx_encoder.name == torch_encoder.name == encoder_name("all-MiniLM-L6-v2", "onnx") == "all-MiniLM-L6-v2"


def test_onnx_cache_is_reused_and_a_broken_one_exported_again(onnx_encoder: TextEncoder) -> None:
    from melscribe.encoding.onnx_backend import META_FILE, MODEL_FILE, OnnxBackend, OnnxCacheError, cache_dir

    folder = cache_dir("all-MiniLM-L6-v2")
    assert onnx_encoder._impl.folder == folder and (folder / MODEL_FILE).is_file()
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["optimised"] and meta["min_cosine_to_torch"] >= 1 - 1e-4 and meta["pooling"] == ["mean"]
    stamp = (folder / MODEL_FILE).stat().st_mtime_ns
    again = TextEncoder("all-MiniLM-L6-v2", backend="onnx")
    assert (folder / MODEL_FILE).stat().st_mtime_ns == stamp, "a valid cache was exported again"
    np.testing.assert_allclose(again.encode(TEXTS[:3]), onnx_encoder.encode(TEXTS[:3]), atol=1e-6)

    truncated = folder.parent / "truncated"
    shutil.copytree(folder, truncated)
    with open(truncated / MODEL_FILE, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(OnnxCacheError, match="1000 of"):
        OnnxBackend(truncated)
    shutil.rmtree(truncated)

    # other weights of the same size: only the probe can tell
    meta["probe"] = (-np.asarray(meta["probe"])).tolist()
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="broken .*probe embedding differs"):
        fixed = TextEncoder("all-MiniLM-L6-v2", backend="onnx")
    assert cosines(fixed.encode(TEXTS[:3]), onnx_encoder.encode(TEXTS[:3])).min() >= 1 - 1e-6
    assert json.loads((folder / META_FILE).read_text())["probe"] != meta["probe"]


def test_onnx_int8_keeps_the_feed_forward_down_projections_fp32(torch_encoder: TextEncoder, onnx_encoder: TextEncoder,
                                                                home: Path) -> None:
    import json

    import onnx

    from melscribe.encoding.onnx_backend import META_FILE, MODEL_FILE, QUANTIZATION, gelu_fed_matmuls

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        int8 = TextEncoder("all-MiniLM-L6-v2", backend="onnx-int8")
        kept = gelu_fed_matmuls(onnx.load(str(onnx_encoder._impl.folder / MODEL_FILE)))
        # MiniLM-L6: one down-projection per layer, reading the fused BiasGelu
        assert len(kept) == 6 and all("/output/dense/" in k and "attention" not in k for k in kept)
        meta = int8._impl.meta
        assert meta["quantization"] == QUANTIZATION and meta["kept_fp32"] == 6
        ops = {n.name: n.op_type for n in onnx.load(str(int8._impl.folder / MODEL_FILE)).graph.node}
        assert all(ops[k] == "MatMul" for k in kept)  # left as they were
        assert {"QAttention", "MatMulInteger"} & set(ops.values())  # the others are int8
        c = cosines(int8.encode(TEXTS), torch_encoder.encode(TEXTS))
        assert 0.98 < c.min() < 1 - 1e-4, c  # close to torch, and really quantised

        # activations are quantised with one scale per run: in one padded run, texts change each other's
        # embeddings; each text runs alone instead, so batching never changes one
        impl = int8._impl
        alone = np.stack([int8.encode([t])[0] for t in TEXTS])
        shared_run = impl._run(impl._session, [e.ids for e in impl.tokenizer.encode_batch([impl._prepare(t) for t in TEXTS])])
        assert cosines(shared_run, alone).min() < 1 - 1e-4
        assert cosines(int8.encode(TEXTS), alone).min() >= 1 - 1e-6
        assert cosines(int8.encode(TEXTS[::-1], batch_size=4)[::-1], alone).min() >= 1 - 1e-6
        # an index of descriptor sets embedded in shared runs (melscribe before) would not match such requests
        assert int8.encodes_each_text_alone and not torch_encoder.encodes_each_text_alone
        index = DescriptorIndex.from_embeddings(int8.encode(TEXTS), TEXTS, int8, fingerprint="catalog")
        assert index.encoded_alone
        index.check(int8, "catalog")
        with pytest.raises(StaleIndexError, match="embedded in shared batches"):
            dataclasses.replace(index, encoded_alone=False).check(int8, "catalog")
        mp.setenv("MELSCRIBE_ONNX_THREADS", "1")
        one_thread = TextEncoder("all-MiniLM-L6-v2", backend="onnx-int8")
        assert cosines(one_thread.encode(TEXTS), alone).min() >= 1 - 1e-6
        mp.delenv("MELSCRIBE_ONNX_THREADS")

        # a cache quantised by another scheme is exported again
        path = int8._impl.folder / META_FILE
        path.write_text(json.dumps(dict(meta, quantization="int8 per-tensor")))
        with pytest.warns(UserWarning, match="quantised as 'int8 per-tensor'"):
            again = TextEncoder("all-MiniLM-L6-v2", backend="onnx-int8")
        assert again._impl.meta["quantization"] == QUANTIZATION


@pytest.mark.subprocess
def test_onnx_needs_neither_torch_nor_sentence_transformers_at_request_time(onnx_encoder: TextEncoder, home: Path) -> None:
    code = ("import sys; from melscribe.encoding.encoder import TextEncoder; e = TextEncoder('all-MiniLM-L6-v2', backend='onnx'); "
            "assert e.encode(['steel drums']).shape == (1, 384); "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    env = dict(os.environ, MELSCRIBE_HOME=str(home), PYTHONPATH=str(Path(__file__).parents[2]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_onnx_refuses_what_it_cannot_pool(minilm) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    from melscribe.encoding.onnx_backend import describe

    assert describe(minilm)["pooling"] == ["mean"]
    last = SentenceTransformer(modules=[minilm[0], Pooling(384, pooling_mode="lasttoken")], device="cpu")
    with pytest.raises(ModelUnavailableError, match="lasttoken: use the torch backend"):
        describe(last)
    two = SentenceTransformer(modules=[minilm[0], Pooling(384, pooling_mode=("cls", "max"))], device="cpu")
    assert describe(two)["pooling"] == ["cls", "max"]


def test_pooling_modes_match_sentence_transformers(minilm) -> None:
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    from melscribe.encoding.onnx_backend import pool

    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    for modes in ("mean", "cls", "max", "mean_sqrt_len_tokens", ("mean", "max")):
        ref = Pooling(4, pooling_mode=modes)({"token_embeddings": torch.from_numpy(hidden),
                                              "attention_mask": torch.from_numpy(mask)})["sentence_embedding"]
        np.testing.assert_allclose(pool(hidden, mask, [modes] if isinstance(modes, str) else modes), ref.numpy(), atol=1e-6)


# ---- static students --------------------------------------------------------------------------------
PAIRS = [("upbeat tropical steel drums for the beach", "steel drums, tropical, upbeat"),
         ("a sad slow piano song", "sad, piano, ballad, slow"), ("aggressive metal with distorted guitars", "heavy metal, distorted guitar"),
         ("smooth jazz in a lounge", "jazz, saxophone, smooth, lounge"), ("calm ambient music to relax", "ambient, calm, synth pad"),
         ("old school rap", "hip hop, rap, male vocal"), ("epic orchestral film music", "classical, orchestra, epic"),
         ("country song with banjo", "country, banjo, acoustic guitar")] * 3


@pytest.fixture()
def cheap_token_vectors(monkeypatch: pytest.MonkeyPatch):
    """Token vectors for only the tokens of the test texts (the whole vocabulary takes a minute on 2 cores);
    the others get small random vectors."""
    import melscribe.train.fast as fast

    real = fast.token_vectors

    def cheap(model, ids=None, batch_size=512):
        vocab = len(model[0].tokenizer)
        out = np.random.default_rng(0).standard_normal((vocab, model.get_embedding_dimension())).astype(np.float32) * 0.01
        used = sorted({i for a, b in PAIRS for i in model[0].tokenizer(a + " " + b, add_special_tokens=False)["input_ids"]})
        out[used] = real(model, used)
        return out

    monkeypatch.setattr(fast, "token_vectors", cheap)


def test_token_vectors_are_the_teachers_embeddings_of_single_tokens(minilm) -> None:
    from melscribe.train.fast import token_vectors

    words = ["piano", "guitar", "jazz"]
    ids = [minilm.tokenizer.convert_tokens_to_ids(w) for w in words]
    vectors = token_vectors(minilm, ids)
    assert cosines(vectors, minilm.encode(words, normalize_embeddings=True)).min() > 0.9999


@pytest.mark.parametrize("kind", ["static-distill", "static-mnrl"])
def test_static_student_trains_and_runs_on_the_static_backend(kind: str, tmp_path: Path, cheap_token_vectors) -> None:
    from sentence_transformers import SentenceTransformer

    from melscribe.encoding.static_backend import STUDENT_INFO
    from melscribe.train.fast import distillation_texts, train_fast_student
    from melscribe.train.settings import FastSettings, TrainerSettings

    texts = distillation_texts([q for q, _ in PAIRS], [d for _, d in PAIRS])
    assert "steel drums" in texts and len(texts) == len(set(texts))
    model_dir = train_fast_student("all-MiniLM-L6-v2", tmp_path / kind,
                                   FastSettings(student=kind, max_steps=3, batch_size=8),
                                   TrainerSettings(save_steps=2, bf16=False), texts=texts, pairs=PAIRS,
                                   tracks=[str(i % 8) for i in range(len(PAIRS))])
    assert json.loads((model_dir / STUDENT_INFO).read_text())["kind"] == kind
    encoder = TextEncoder(model_dir, backend="static")
    assert encoder.dim == 384 and encoder.name.endswith("@static")
    got = encoder.encode(TEXTS + [""])
    np.testing.assert_allclose(np.linalg.norm(got[:-1], axis=1), 1.0, atol=1e-5)
    assert not got[-1].any()  # no token: a zero vector, as sentence-transformers gives
    reference = SentenceTransformer(str(model_dir), device="cpu").encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(got[:-1], reference, atol=1e-5)
    assert encoder.token_count("steel drums") == 2
    scores = encoder.encode(["tropical steel drums"]) @ encoder.encode(["steel drums, tropical", "heavy metal"]).T
    assert scores[0, 0] > scores[0, 1]
    if kind == "static-mnrl":
        return
    from melscribe.serve.recommend import Recommender
    from melscribe.serve.store_setup import index_cache_dir

    catalog = small_catalog(tmp_path)
    rec = Recommender(encoder, catalog)  # its own index: the static embeddings are not the bi-encoder's
    assert rec.index.path == index_cache_dir(f"{model_dir}@static", catalog.fingerprint())
    assert rec.index.path != index_cache_dir(encoder_name(model_dir, "torch"), catalog.fingerprint())
    assert rec.recommend("steel drums", 3)[0].track_id.startswith("calypso")


def test_static_backend_says_when_there_is_no_student() -> None:
    with pytest.raises(ModelUnavailableError, match="no fast student.*melscribe train --stage fast"):
        TextEncoder("all-MiniLM-L6-v2", backend="static")


def test_stage_fast_publishes_the_student_inside_the_model(real_data_dir: Path, tmp_path: Path, cheap_token_vectors) -> None:
    from melscribe.config import resolve_model
    from melscribe.data import load_musiccaps
    from melscribe.train.presets import get_preset
    from melscribe.train.pipeline import train

    out = tmp_path / "run"
    shutil.copytree(resolve_model(None), out / "mnrl" / "model")  # stands for a trained bi-encoder
    cfg = get_preset("offline", {"fast.student": "static-distill", "fast.max_steps": 2, "fast.max_texts": 300,
                                 "pairs.heldout_tracks": 12, "pairs.synthetic_per_track": 0, "trainer.save_steps": 10})
    final = train(cfg, out, records=load_musiccaps(real_data_dir, split="train")[:20], publish_to=tmp_path / "published")
    assert (out / "fast" / "static-distill" / "model" / "fast_student.json").is_file()
    assert json.loads((out / "run.json").read_text())["seconds"].keys() >= {"fast"}
    for folder in (final, tmp_path / "published"):
        assert (folder / STUDENT_DIR / "modules.json").is_file() and (folder / "fusion.json").is_file()
        for backend in ("static", "student"):
            emb = TextEncoder(folder, backend=backend).encode(["tropical steel drums"])
            assert emb.shape == (1, 384)
    assert TextEncoder(final).dim == 384  # the bi-encoder itself still loads


def test_layer_student_is_a_smaller_transformer_trained_on_the_teachers_embeddings(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from melscribe.train.fast import parse_kind, train_fast_student
    from melscribe.train.settings import FastSettings, TrainerSettings

    assert parse_kind("layers-3") == ("layers", 3) and parse_kind("static-mnrl") == ("static-mnrl", None)
    with pytest.raises(ValueError, match="unknown fast student"):
        parse_kind("layers-x")
    texts = sorted({t for pair in PAIRS for t in pair})
    model_dir = train_fast_student("all-MiniLM-L6-v2", tmp_path / "layers",
                                   FastSettings(student="layers-2", max_steps=2, batch_size=8),
                                   TrainerSettings(max_seq_length=64, save_steps=10, bf16=False), texts=texts)
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert len(model[0].auto_model.encoder.layer) == model[0].auto_model.config.num_hidden_layers == 2
    assert model.max_seq_length == 64 and model.encode(["steel drums"]).shape == (1, 384)
    assert json.loads((model_dir / "fast_student.json").read_text())["kind"] == "layers-2"


# ---- the backend everywhere -------------------------------------------------------------------------
def test_recommender_on_onnx_gives_torch_top_10_from_the_same_index(torch_encoder: TextEncoder, onnx_encoder: TextEncoder,
                                                                    home: Path, tmp_path: Path) -> None:
    from melscribe.serve.recommend import Recommender

    catalog = small_catalog(tmp_path)
    by_torch = recommender_in(home, torch_encoder, catalog)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale index would be rebuilt with a warning
        by_onnx = recommender_in(home, onnx_encoder, catalog)
    assert by_onnx.index.path == by_torch.index.path
    for request in ("upbeat tropical steel drums", "something sad on the piano", "aggressive fast music"):
        a, b = by_torch.recommend(request, 10), by_onnx.recommend(request, 10)
        assert [r.track_id for r in a] == [r.track_id for r in b]
        np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        named = Recommender("all-MiniLM-L6-v2", catalog, backend="onnx")
    assert named.encoder.backend == "onnx" and named.index.path == by_torch.index.path


def test_scorer_specs_take_a_backend(onnx_encoder: TextEncoder) -> None:
    from melscribe.retrieval.scorers import make_scorer, split_backend

    assert split_backend("dense:x@onnx") == ("dense:x", "onnx")
    assert split_backend("some/path@v2") == ("some/path@v2", "torch")
    scorer = make_scorer("dense:all-MiniLM-L6-v2@onnx")
    assert scorer.encoder.backend == "onnx" and scorer.name == "dense:all-MiniLM-L6-v2@onnx"
    scores = scorer.fit(["steel drums, tropical", "sad, piano"]).score(["tropical steel drums"])
    assert scores[0, 0] > scores[0, 1]


def test_backend_option_of_the_commands() -> None:
    from melscribe.cli import build_parser

    parser = build_parser()
    for argv in (["recommend", "hi", "--backend", "torch"], ["serve", "--backend", "static"],
                 ["index", "build", "--backend", "student"], ["index", "info", "--backend", "onnx-int8"]):
        assert parser.parse_args(argv).backend == argv[-1]
    assert parser.parse_args(["recommend", "hi"]).backend == "onnx-int8"  # SERVING_BACKEND
    with pytest.raises(SystemExit):
        parser.parse_args(["recommend", "hi", "--backend", "tensorflow"])


def test_onnx_session_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from melscribe.config import available_cores
    from melscribe.encoding import onnx_backend

    monkeypatch.delenv(onnx_backend.THREADS_ENV, raising=False)
    monkeypatch.delenv(onnx_backend.SPIN_ENV, raising=False)
    assert onnx_backend.session_settings() == (available_cores(), True)
    monkeypatch.setenv(onnx_backend.THREADS_ENV, "1")
    monkeypatch.setenv(onnx_backend.SPIN_ENV, "0")
    assert onnx_backend.session_settings() == (1, False)


def _overwrite(path: Path, offset: int, n: int = 4096) -> None:
    """Overwrite ``n`` bytes of a file at ``offset`` with seeded noise, keeping its size."""
    data = bytearray(path.read_bytes())
    data[offset:offset + n] = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_damaged_weights_of_a_published_model_fail_their_checksum(minilm, tmp_path: Path) -> None:
    from melscribe.encoding.models import WEIGHTS_RECORD
    from melscribe.train.checkpoints import publish_model

    folder = publish_model(minilm, tmp_path / "published")
    assert (folder / WEIGHTS_RECORD).is_file()
    TextEncoder(str(folder))  # intact: loads
    _overwrite(folder / "model.safetensors", 100_000)  # a change that leaves the embeddings plausible
    with pytest.raises(ModelUnavailableError, match=r"model\.safetensors are missing or damaged"):
        TextEncoder(str(folder))


def test_weights_damaged_into_embedding_everything_alike_are_refused(minilm, tmp_path: Path) -> None:
    from melscribe.encoding.encoder import DEGENERATE_PROBES

    healthy = TextEncoder(minilm).encode(list(DEGENERATE_PROBES))
    assert (healthy @ healthy.T)[np.triu_indices(len(DEGENERATE_PROBES), 1)].max() < 0.4  # far from alike
    minilm.save(str(tmp_path / "copy"))  # no checksum record: the probes catch it
    _overwrite(tmp_path / "copy" / "model.safetensors", 85_000_000)
    with pytest.raises(ModelUnavailableError, match="embeds different texts alike"):
        TextEncoder(str(tmp_path / "copy"))
