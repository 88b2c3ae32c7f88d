"""musicnn's taggers in PyTorch: the checkpoint reader on the package's real files, the port against the
original TensorFlow's outputs (``data/musicnn_reference.npz``, written by ``experiments/musicnn_faithful.py``),
the log-mel front end, the float16 overflow the port fixes, bad input, and the weight cache.

Tests that need the weights skip when ``musicnn`` is not installed (``pip install --no-deps musicnn==0.1.0``);
it is found with ``importlib.util.find_spec``, since importing it would import TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from melscribe.audio.musicnn import TAGGERS, MusicnnTagger
from melscribe.audio.musicnn import tagger as tagger_module
from melscribe.audio.musicnn.checkpoint import DATA_FILE, INDEX_FILE, read_checkpoint
from melscribe.audio.musicnn.frontend import HOP, PATCH_FRAMES, SAMPLE_RATE, log_mel, mel_filterbank, patches
from melscribe.errors import DataError, InvalidRequestError

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
MODELS = {"MTT_musicnn": "musicnn-mtt", "MSD_musicnn": "musicnn-msd", "MTT_vgg": "musicnn-mtt-vgg",
          "MSD_vgg": "musicnn-msd-vgg"}
TOLERANCE = 1e-4

needs_musicnn = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                   reason="needs the musicnn weights: pip install --no-deps musicnn==0.1.0")


def _experiment():
    """``experiments/musicnn_faithful.py``, for the generators of the reference inputs."""
    spec = importlib.util.spec_from_file_location("musicnn_faithful", ROOT / "experiments" / "musicnn_faithful.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


experiment = _experiment()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def taggers(home: Path) -> dict[tuple[str, str], MusicnnTagger]:
    """Every tagger on both backends, keyed by (musicnn model folder, backend), cached under ``home``."""
    if importlib.util.find_spec("musicnn") is None:
        pytest.skip("needs the musicnn weights: pip install --no-deps musicnn==0.1.0")
    return {(model, backend): MusicnnTagger.load(name, cache_dir=home / "audio-models", backend=backend)
            for model, name in MODELS.items() for backend in ("onnx", "torch")}


# ---- the checkpoint reader


@needs_musicnn
def test_the_reader_finds_every_variable_of_the_real_checkpoints():
    package = tagger_module.musicnn_package_dir()
    variables = read_checkpoint(package / "MTT_musicnn")
    model = {k: v for k, v in variables.items() if "Adam" not in k and not k.endswith("_power")}
    assert len(variables) == 150 and len(model) == 64  # the rest: Adam's two slots per variable, beta powers
    assert model["conv2d/kernel"].shape == (7, 38, 1, 204) and model["conv2d_1/kernel"].shape == (7, 67, 1, 204)
    assert model["conv2d_2/kernel"].shape == (128, 1, 1, 51) and model["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert model["batch_normalization_9/moving_variance"].shape == (1506,)
    assert model["dense_1/kernel"].shape == (200, 50) and model["dense_1/kernel"].dtype == np.float32
    assert np.all(model["batch_normalization_10/moving_variance"] > 0)
    vgg = read_checkpoint(package / "MSD_vgg")
    assert len([k for k in vgg if "Adam" not in k and not k.endswith("_power")]) == 36
    assert vgg["5CNN/kernel"].shape == (3, 3, 128, 128) and vgg["dense/kernel"].shape == (256, 50)


@needs_musicnn
def test_the_reader_refuses_missing_and_damaged_files(tmp_path):
    source = tagger_module.musicnn_package_dir() / "MTT_vgg"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    shutil.copy(source / INDEX_FILE, folder / INDEX_FILE)
    with pytest.raises(DataError, match="missing"):
        read_checkpoint(folder)
    data = (source / DATA_FILE).read_bytes()
    (folder / DATA_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="past the end of the data file"):
        read_checkpoint(folder)
    (folder / DATA_FILE).write_bytes(data)
    index = (source / INDEX_FILE).read_bytes()
    (folder / INDEX_FILE).write_bytes(index[:-10])
    with pytest.raises(DataError, match="index .* is corrupt"):
        read_checkpoint(folder)


# ---- the port against TensorFlow


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_the_network_gives_tensorflows_probabilities_on_the_same_patches(taggers, reference, model, backend):
    x = experiment.random_patches(experiment.REFERENCE_PATCHES)
    got = taggers[model, backend].patch_probabilities(x)
    assert got.dtype == np.float32 and got.shape == (3, 50)
    assert np.abs(got - reference[f"patches/{model}"]).max() <= TOLERANCE


@pytest.mark.parametrize("model", MODELS)
def test_whole_clips_get_the_original_tags_computed_in_float32(taggers, reference, model):
    clips = experiment.clips(experiment.REFERENCE_SEEDS, experiment.REFERENCE_SECONDS)
    got = taggers[model, "onnx"].tag_probabilities(list(clips.values()))
    want = np.stack([reference[f"tags/{model}/float32/{name}"] for name in clips])
    assert got.shape == (len(clips), 50) and np.abs(got - want).max() <= TOLERANCE
    # on quiet audio the original as shipped (float16) is close too
    quiet = [i for i, name in enumerate(clips) if name.startswith("quiet")]
    f16 = np.stack([reference[f"tags/{model}/float16/{name}"] for name in clips])
    assert np.abs(got[quiet] - f16[quiet]).max() < 1e-3


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_loud_clips_get_finite_distinct_tags_where_the_original_overflows(taggers, reference, model):
    loud = {s: experiment.synthetic_audio(s, experiment.REFERENCE_SECONDS, experiment.LEVELS["loud"])
            for s in experiment.REFERENCE_SEEDS}
    assert max(log_mel(w).max() for w in loud.values()) > np.log10(65504)  # past float16's largest number
    got = taggers[model, "onnx"].tag_probabilities(list(loud.values()))
    assert np.isfinite(got).all() and ((got >= 0) & (got <= 1)).all()
    assert np.abs(got[0] - got[1]).max() > 0.02
    # the original, with its float16 cast, gives both clips exactly the same tags
    a, b = (reference[f"tags/{model}/float16/loud-{s}"] for s in experiment.REFERENCE_SEEDS)
    assert np.array_equal(a, b)


# ---- the front end


def test_the_filterbank_is_librosas_slaney_mel(reference):
    assert np.abs(mel_filterbank() - reference["librosa_mel_basis"]).max() < 1e-6


def test_a_tone_lands_in_its_mel_band_and_frames_hop_256_samples():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    fb = mel_filterbank()
    for hz in (440.0, 1000.0, 3000.0):
        frames = log_mel(0.5 * np.sin(2 * np.pi * hz * t))
        assert frames.shape == (1 + SAMPLE_RATE // HOP, 96) and frames.dtype == np.float32
        assert frames.mean(axis=0).argmax() == fb[:, round(hz / (SAMPLE_RATE / 512))].argmax()
    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[20 * HOP] = 1.0
    assert log_mel(click).sum(axis=1).argmax() == 20


def test_patches_do_not_overlap_and_a_short_clip_is_repeated():
    frames = np.arange(500 * 96, dtype=np.float32).reshape(500, 96)
    cut = patches(frames)
    assert cut.shape == (2, PATCH_FRAMES, 96)
    assert np.array_equal(cut[1, 0], frames[PATCH_FRAMES])  # trailing 126 frames dropped
    short = patches(frames[:100])
    assert short.shape == (1, PATCH_FRAMES, 96)
    assert np.array_equal(short[0, 100], frames[0]) and np.array_equal(short[0, 186], frames[86])


# ---- bad input


@needs_musicnn
def test_empty_wrong_and_short_input(taggers):
    tagger = taggers["MTT_musicnn", "onnx"]
    with pytest.raises(InvalidRequestError, match="empty"):
        tagger.tag_probabilities([np.zeros(0, dtype=np.float32)])
    with pytest.raises(InvalidRequestError, match="1-D"):
        tagger.tag_probabilities([np.zeros((2, 16000), dtype=np.float32)])
    with pytest.raises(InvalidRequestError, match="list of waveforms"):
        tagger.tag_probabilities(np.zeros(16000, dtype=np.float32))
    with pytest.raises(InvalidRequestError, match="NaN"):
        tagger.tag_probabilities([np.full(16000, np.nan, dtype=np.float32)])
    with pytest.raises(InvalidRequestError, match="shape"):
        tagger.patch_probabilities(np.zeros((1, 100, 96), dtype=np.float32))
    assert tagger.tag_probabilities([]).shape == (0, 50)
    short = experiment.synthetic_audio(5, 0.5, 0.1)
    got = tagger.tag_probabilities([short])
    assert got.shape == (1, 50) and np.isfinite(got).all()
    assert np.allclose(got[0], tagger.patch_probabilities(patches(log_mel(short)))[0], atol=1e-6)


def test_unknown_names_are_refused():
    assert TAGGERS == ("musicnn-mtt", "musicnn-msd", "musicnn-mtt-vgg", "musicnn-msd-vgg")
    with pytest.raises(InvalidRequestError, match="unknown musicnn tagger"):
        MusicnnTagger.load("musicnn-xyz")
    with pytest.raises(InvalidRequestError, match="unknown backend"):
        MusicnnTagger.load("musicnn-mtt", backend="tensorflow")


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "musicnn" else real(name, *a))
    with pytest.raises(DataError, match=r"pip install --no-deps musicnn==0\.1\.0"):
        MusicnnTagger.load("musicnn-mtt")


# ---- the weight cache


@needs_musicnn
@pytest.mark.parametrize("damaged", [tagger_module.WEIGHTS_FILE, tagger_module.ONNX_FILE])
def test_a_damaged_cache_is_detected_and_rebuilt(tmp_path, damaged):
    tagger = MusicnnTagger.load("musicnn-mtt-vgg", cache_dir=tmp_path)
    folder = tmp_path / "musicnn-mtt-vgg"
    meta = json.loads((folder / tagger_module.META_FILE).read_text())
    assert set(meta["sha256"]) == {tagger_module.WEIGHTS_FILE, tagger_module.ONNX_FILE}
    blob = bytearray((folder / damaged).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / damaged).write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="corrupt"):
        again = MusicnnTagger.load("musicnn-mtt-vgg", cache_dir=tmp_path)
    x = experiment.random_patches(2)
    assert np.array_equal(again.patch_probabilities(x), tagger.patch_probabilities(x))
    assert json.loads((folder / tagger_module.META_FILE).read_text()) == meta  # rebuilt identically
