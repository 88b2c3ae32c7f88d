"""Tests of melscribe.audio (files, joint, clap) on synthetic audio and a tiny random-weight CLAP checkpoint."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melscribe.errors import DataError, InvalidRequestError
from melscribe.audio.clap import ClapAudioTextModel
from melscribe.audio.files import AudioEmbeddings, embed_audio_files, load_audio
from melscribe.audio.joint import rerank_by_audio, tag_audio

from tiny_fixtures import tiny_clap

VOCABULARY = ["steel drums", "upbeat", "tropical", "calm piano", "noise", "rock guitar", "sad violin"]


def sine(freq: float, seconds: float, rate: int) -> np.ndarray:
    """A float32 sine tone of amplitude 0.5."""
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """White noise of standard deviation 0.3."""
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


class CountingModel:
    """Wraps an AudioTextModel and records the size of each embed_audio call."""

    def __init__(self, model: ClapAudioTextModel, name: str | None = None) -> None:
        self.inner = model
        self.name = name or model.name
        self.sample_rate = model.sample_rate
        self.audio_batches: list[int] = []

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_text(texts)

    def embed_audio(self, waveforms: list[np.ndarray]) -> np.ndarray:
        self.audio_batches.append(len(waveforms))
        return self.inner.embed_audio(waveforms)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ClapAudioTextModel:
    return tiny_clap(tmp_path_factory.mktemp("tiny-clap"))


@pytest.fixture
def audio_files(tmp_path: Path) -> list[Path]:
    """Five decodable files: sines and noise at several sample rates, mono and stereo, WAV and FLAC."""
    folder = tmp_path / "audio"
    folder.mkdir()
    specs = [
        ("a220_16k.wav", sine(220, 1.0, 16_000), 16_000),
        ("a880_44k_stereo.wav", np.stack([sine(880, 1.5, 44_100), sine(660, 1.5, 44_100)], axis=1), 44_100),
        ("a3000_22k.flac", sine(3000, 0.7, 22_050), 22_050),
        ("noise_48k_stereo.wav", np.stack([noise(2.5, 48_000, 1), noise(2.5, 48_000, 2)], axis=1), 48_000),
        ("noise_8k.wav", noise(0.5, 8_000, 3), 8_000),
    ]
    paths = []
    for name, data, rate in specs:
        sf.write(folder / name, data, rate)
        paths.append(folder / name)
    return paths


def write_corrupt_files(folder: Path) -> tuple[Path, Path]:
    """A file of random bytes named .wav, and a WAV cut in the middle of its audio data."""
    garbage = folder / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(7).bytes(4000))
    whole = folder / "whole.wav"
    sf.write(whole, sine(440, 1.0, 16_000), 16_000)
    truncated = folder / "truncated.wav"
    data = whole.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    whole.unlink()
    return garbage, truncated


# --- load_audio -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source_rate", [8_000, 16_000, 22_050, 44_100, 48_000])
def test_load_audio_resamples_to_the_target_rate(tmp_path: Path, source_rate: int) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, sine(440, 1.3, source_rate), source_rate, subtype="FLOAT")
    waveform = load_audio(path, 16_000)
    n = int(1.3 * source_rate)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == math.ceil(n * 16_000 / source_rate)
    spectrum = np.abs(np.fft.rfft(waveform))
    peak_hz = np.argmax(spectrum) * 16_000 / len(waveform)
    assert abs(peak_hz - 440) < 2


def test_load_audio_mixes_stereo_to_mono(tmp_path: Path) -> None:
    left, right = sine(440, 1.0, 16_000), noise(1.0, 16_000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 16_000), (left + right) / 2, atol=1e-6)


def test_load_audio_reports_undecodable_files_by_name(tmp_path: Path) -> None:
    garbage, truncated = write_corrupt_files(tmp_path)
    header_only = tmp_path / "header_only.wav"
    sf.write(header_only, sine(440, 1.0, 16_000), 16_000)
    header_only.write_bytes(header_only.read_bytes()[:44])
    for path in (garbage, truncated, header_only, tmp_path / "missing.wav"):
        with pytest.raises(DataError, match=path.name):
            load_audio(path, 16_000)
    with pytest.raises(DataError, match="truncated"):
        load_audio(truncated, 16_000)


# --- the CLAP adapter --------------------------------------------------------------------------------


def test_embed_audio_is_normalised_deterministic_and_batch_independent(model: ClapAudioTextModel) -> None:
    rate = model.sample_rate
    clips = [sine(220, 1.0, rate), sine(3000, 0.6, rate), noise(2.5, rate), noise(0.3, rate, seed=5)]
    first = model.embed_audio(clips)
    assert first.shape == (4, 16) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(model.embed_audio(clips), first)
    np.testing.assert_allclose(model.embed_audio(clips[::-1])[::-1], first, atol=1e-5)
    np.testing.assert_allclose(model.embed_audio(clips[2:3])[0], first[2], atol=1e-5)
    assert first[0] @ first[2] < 0.99  # a tone and noise do not collapse onto one point


def test_long_clips_do_not_depend_on_numpy_global_random_state(model: ClapAudioTextModel) -> None:
    long_clips = [noise(2.5, model.sample_rate, seed=1), sine(500, 3.0, model.sample_rate)]  # > the 1 s window
    np.random.seed(1)
    first = model.embed_audio(long_clips)
    np.random.seed(2)
    np.testing.assert_allclose(model.embed_audio(long_clips[::-1])[::-1], first, atol=1e-5)


def test_fusion_model_embeds_each_clip_independently_of_its_batch(tmp_path: Path) -> None:
    fused = tiny_clap(tmp_path / "fused", fusion=True)
    rate = fused.sample_rate
    clips = [sine(220, 0.5, rate), noise(0.8, rate), noise(2.5, rate, seed=4), sine(700, 1.7, rate)]
    np.random.seed(3)
    together = fused.embed_audio(clips)
    assert together.shape == (4, 16)
    np.random.seed(4)
    alone = np.concatenate([fused.embed_audio([clip]) for clip in clips])
    np.testing.assert_allclose(alone, together, atol=1e-5)
    np.testing.assert_allclose(fused.embed_audio(clips[:2]), together[:2], atol=1e-5)  # no long clip in the batch
    # only clips longer than the window take the fusion branch (the extractor would flag a random one)
    assert fused._audio_features(clips)[1].ravel().tolist() == [False, False, True, True]


def test_embed_audio_leaves_numpy_global_random_state_alone(model: ClapAudioTextModel) -> None:
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    model.embed_audio([noise(2.5, model.sample_rate)])  # longer than the 1 s window: randomly cropped
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


def test_embed_audio_rejects_non_mono_input(model: ClapAudioTextModel) -> None:
    with pytest.raises(InvalidRequestError):
        model.embed_audio([np.zeros((100, 2), dtype=np.float32)])
    with pytest.raises(InvalidRequestError):
        model.embed_audio([np.zeros(0, dtype=np.float32)])


def test_embed_text_shape_normalisation_and_truncation(model: ClapAudioTextModel) -> None:
    texts = ["steel drums", "upbeat tropical", "an unknown word: xylophonic", " ".join(["music"] * 300)]
    embeddings = model.embed_text(texts)
    assert embeddings.shape == (4, 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(model.embed_text(texts[:1])[0], embeddings[0], atol=1e-5)
    assert model.embed_text([]).shape == (0, 16)


def test_tiny_clap_is_reproducible_and_loaded_from_its_folder(model: ClapAudioTextModel, tmp_path: Path) -> None:
    again = tiny_clap(tmp_path / "again")
    assert again.name == str((tmp_path / "again").resolve())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(tmp_path / "again"))
    clip = [sine(330, 1.0, model.sample_rate)]
    np.testing.assert_allclose(again.embed_audio(clip), model.embed_audio(clip), atol=1e-6)
    np.testing.assert_allclose(again.embed_text(["calm piano"]), model.embed_text(["calm piano"]), atol=1e-6)


def test_from_pretrained_reports_an_unloadable_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CLAP checkpoint"):
        ClapAudioTextModel.from_pretrained(tmp_path)  # an existing folder without a checkpoint


# --- embed_audio_files -------------------------------------------------------------------------------


def test_embed_audio_files_matches_direct_embedding(
    model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path
) -> None:
    result = embed_audio_files(model, audio_files, cache_dir=tmp_path / "cache")
    assert isinstance(result, AudioEmbeddings)
    assert result.paths == audio_files and result.failures == []
    direct = model.embed_audio([load_audio(p, model.sample_rate) for p in audio_files])
    np.testing.assert_allclose(result.embeddings, direct, atol=1e-5)


def test_second_call_is_served_from_the_cache(
    model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    counting = CountingModel(model)
    first = embed_audio_files(counting, audio_files, cache_dir=cache, batch_size=2)
    assert counting.audio_batches == [2, 2, 1]
    second = embed_audio_files(counting, audio_files, cache_dir=cache, batch_size=2)
    assert counting.audio_batches == [2, 2, 1]  # nothing recomputed
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.paths == first.paths
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert len(cached) == len(audio_files) and all(p.suffix == ".npy" for p in cached)

    other_model = CountingModel(model, name="another-model")
    embed_audio_files(other_model, audio_files, cache_dir=cache)
    assert sum(other_model.audio_batches) == len(audio_files)  # the cache is keyed by model name too


def test_cache_is_keyed_by_content_not_path(model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy.wav"
    copy.write_bytes(audio_files[0].read_bytes())
    counting = CountingModel(model)
    result = embed_audio_files(counting, [audio_files[0], copy], cache_dir=tmp_path / "cache")
    assert counting.audio_batches == [1]  # identical content embedded once
    np.testing.assert_array_equal(result.embeddings[0], result.embeddings[1])
    sf.write(audio_files[0], sine(1234, 1.0, 16_000), 16_000)  # same path, new content
    embed_audio_files(counting, [audio_files[0]], cache_dir=tmp_path / "cache")
    assert counting.audio_batches == [1, 1]


def test_corrupt_cache_entry_is_recomputed(model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = embed_audio_files(model, audio_files[:1], cache_dir=cache)
    (entry,) = [p for p in cache.rglob("*.npy")]
    entry.write_bytes(b"not a numpy file")
    counting = CountingModel(model)
    again = embed_audio_files(counting, audio_files[:1], cache_dir=cache)
    assert counting.audio_batches == [1]
    np.testing.assert_array_equal(again.embeddings, first.embeddings)


def test_undecodable_files_are_skipped_and_reported(
    model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path
) -> None:
    garbage, truncated = write_corrupt_files(tmp_path)
    missing = tmp_path / "missing.wav"
    paths = [garbage, audio_files[0], truncated, audio_files[1], missing]
    counting = CountingModel(model)
    result = embed_audio_files(counting, paths, cache_dir=tmp_path / "cache")
    assert result.paths == [audio_files[0], audio_files[1]]
    assert [p for p, _ in result.failures] == [garbage, truncated, missing]
    assert all(p.name in reason for p, reason in result.failures)
    assert "truncated" in dict(result.failures)[truncated]
    np.testing.assert_allclose(
        result.embeddings, model.embed_audio([load_audio(p, model.sample_rate) for p in audio_files[:2]]), atol=1e-5
    )
    again = embed_audio_files(counting, paths, cache_dir=tmp_path / "cache")
    assert again.failures == result.failures  # failures are not cached as successes


def test_no_decodable_file_gives_an_empty_result(model: ClapAudioTextModel, tmp_path: Path) -> None:
    garbage, _ = write_corrupt_files(tmp_path)
    result = embed_audio_files(model, [garbage], cache_dir=tmp_path / "cache")
    assert result.paths == [] and result.embeddings.shape == (0, 0) and len(result.failures) == 1


def test_default_cache_lives_under_melscribe_home(
    model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELSCRIBE_HOME", str(tmp_path / "home"))
    embed_audio_files(model, audio_files[:2])
    assert len(list((tmp_path / "home" / "audio-cache").rglob("*.npy"))) == 2


# --- tag_audio and rerank_by_audio -------------------------------------------------------------------


@pytest.fixture
def embedded(model: ClapAudioTextModel, audio_files: list[Path], tmp_path: Path) -> AudioEmbeddings:
    return embed_audio_files(model, audio_files, cache_dir=tmp_path / "cache")


def test_tag_audio_returns_the_best_descriptors_in_score_order(
    model: ClapAudioTextModel, embedded: AudioEmbeddings
) -> None:
    tags = tag_audio(model, embedded, VOCABULARY, top_k=3)
    scores = embedded.embeddings @ model.embed_text(VOCABULARY).T
    assert len(tags) == len(embedded.paths)
    for row, tagged in zip(scores, tags):
        assert len(tagged) == 3
        assert [t for t, _ in tagged] == [VOCABULARY[j] for j in np.argsort(-row, kind="stable")[:3]]
        np.testing.assert_allclose([s for _, s in tagged], np.sort(row)[::-1][:3], atol=1e-5)
    assert tag_audio(model, embedded.embeddings, VOCABULARY, top_k=3) == tags


def test_tag_audio_limits_and_errors(model: ClapAudioTextModel, embedded: AudioEmbeddings) -> None:
    everything = tag_audio(model, embedded, VOCABULARY + ["upbeat"], top_k=50)
    assert all(sorted(t for t, _ in row) == sorted(VOCABULARY) for row in everything)
    with pytest.raises(InvalidRequestError):
        tag_audio(model, embedded, VOCABULARY, top_k=0)
    with pytest.raises(InvalidRequestError):
        tag_audio(model, embedded, [], top_k=3)
    with pytest.raises(InvalidRequestError):
        tag_audio(model, np.ones((2, 5), dtype=np.float32), VOCABULARY)


def test_rerank_by_audio_is_the_cosine_to_the_mean_descriptor(
    model: ClapAudioTextModel, embedded: AudioEmbeddings
) -> None:
    descriptors = ["steel drums", "upbeat", "tropical"]
    scores = rerank_by_audio(model, descriptors, embedded)
    assert scores.shape == (len(embedded.paths),) and scores.dtype == np.float32
    mean = model.embed_text(descriptors).mean(axis=0)
    audio = embedded.embeddings
    manual = audio @ mean / (np.linalg.norm(audio, axis=1) * np.linalg.norm(mean))
    np.testing.assert_allclose(scores, manual, atol=1e-5)
    single = rerank_by_audio(model, ["calm piano"], embedded.embeddings)
    np.testing.assert_allclose(single, audio @ model.embed_text(["calm piano"])[0], atol=1e-5)


def test_rerank_by_audio_errors(model: ClapAudioTextModel, embedded: AudioEmbeddings) -> None:
    with pytest.raises(InvalidRequestError):
        rerank_by_audio(model, [], embedded)
    with pytest.raises(InvalidRequestError):
        rerank_by_audio(model, ["upbeat"], np.ones((3, 7), dtype=np.float32))
    assert rerank_by_audio(model, ["upbeat"], np.zeros((0, 16), dtype=np.float32)).shape == (0,)
