"""The musicnn tagger in the bi-encoder's space: tag → descriptor mapping on hand-made probabilities, and the
real tagger with the packaged MiniLM on audio made here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melscribe.audio.tagger_space import TagDescriber, TaggerTextModel, tag_descriptor
from melscribe.errors import InvalidRequestError

from serve_support import text_encoder

needs_musicnn = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                   reason="needs the musicnn weights: pip install --no-deps musicnn==0.1.0")

TAGS = ["piano", "female", "woman", "no voice", "classic", "drums"]


def test_tags_become_descriptors_merged_by_their_largest_probability() -> None:
    d = TagDescriber(TAGS, threshold=0.3, max_tags=3)
    assert d.descriptor_texts == ("piano", "female vocal", "no vocals", "classical", "drums")
    probs = np.array([[0.9, 0.2, 0.6, 0.1, 0.35, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(d.descriptor_probabilities(probs), [[0.9, 0.6, 0.1, 0.35, 0.0]])
    assert d.describe(probs) == [[("piano", 0.9), ("female vocal", 0.6), ("classical", 0.35)]]


def test_thresholds_and_caps_and_the_best_tag_always_describes() -> None:
    d = TagDescriber(TAGS, threshold=0.5, max_tags=2)
    probs = np.array([[0.9, 0.8, 0.0, 0.0, 0.7, 0.0],     # three above: two kept
                      [0.1, 0.0, 0.0, 0.2, 0.05, 0.15]],  # none above: the best one
                     dtype=np.float32)
    assert d.describe(probs) == [[("piano", 0.9), ("female vocal", 0.8)], [("no vocals", 0.2)]]
    assert tag_descriptor("Hip-Hop") == "hip hop" and tag_descriptor("Mellow") == "mellow"


def test_bad_settings_and_shapes_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="threshold"):
        TagDescriber(TAGS, threshold=1.5)
    with pytest.raises(InvalidRequestError, match="threshold"):
        TagDescriber(TAGS, threshold=float("nan"))
    with pytest.raises(InvalidRequestError, match="max_tags"):
        TagDescriber(TAGS, max_tags=0)
    with pytest.raises(InvalidRequestError, match=r"shape \(n, 6\)"):
        TagDescriber(TAGS).descriptor_probabilities(np.zeros((2, 5)))


def chord(seconds: float, rate: int = 16000) -> np.ndarray:
    """A sustained major chord with a slow decay: tonal, quiet, no beat."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) * np.exp(-0.3 * (t % 3.0))
    return (0.2 * x / 4).astype(np.float32)


def beat(seconds: float, rate: int = 16000, bpm: float = 140) -> np.ndarray:
    """Noise bursts and low thumps on a fast steady beat: percussive."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    phase = (t * bpm / 60) % 1.0
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-25 * phase)
    hat = rng.normal(0, 1, t.size) * np.exp(-60 * ((phase + 0.5) % 1.0))
    return (0.5 * kick + 0.2 * hat).astype(np.float32)


@pytest.fixture(scope="module")
def model(minilm) -> TaggerTextModel:
    if importlib.util.find_spec("musicnn") is None:
        pytest.skip("needs the musicnn weights: pip install --no-deps musicnn==0.1.0")
    return TaggerTextModel.load(text_encoder(minilm))


@needs_musicnn
def test_audio_lands_in_the_text_space_near_its_own_tags(model: TaggerTextModel) -> None:
    clips = [chord(6.0), beat(6.0)]
    audio = model.embed_audio(clips)
    assert audio.shape == (2, model.dim) and audio.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1, atol=1e-5)
    probs = model.tagger.tag_probabilities(clips)
    described = model.describer.describe(probs)
    assert described[0] != described[1]
    # each clip is closer to a request made of its own descriptors than the other clip is
    own = model.embed_text([", ".join(d for d, _ in tags) for tags in described])
    sims = own @ audio.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]


@needs_musicnn
def test_two_audio_only_tracks_are_ranked_against_requests(model: TaggerTextModel, tmp_path: Path) -> None:
    from melscribe.serve.catalog import Catalog
    from melscribe.serve.recommend import Recommender

    folder = tmp_path / "music"
    folder.mkdir()
    sf.write(folder / "chord.wav", chord(6.0), 16000)
    sf.write(folder / "beat.flac", beat(6.0), 16000)
    catalog = Catalog.from_audio_folder(folder, model, cache_dir=tmp_path / "cache")
    assert sorted(t.id for t in catalog) == ["beat.flac", "chord.wav"] and all(t.inferred for t in catalog)
    rec = Recommender(model.encoder, catalog)
    for track in catalog:
        request = ", ".join(track.descriptor_sets[0])
        results = rec.recommend(request, k=2)
        assert results[0].track_id == track.id and results[0].inferred and results[0].audio_score is not None
        assert set(results[0].matched_descriptors) <= set(track.descriptor_sets[0])
    # the tags were cached: a second catalog runs no tagger
    cached = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 2 and Catalog.from_audio_folder(folder, model, cache_dir=tmp_path / "cache").fingerprint() \
        == catalog.fingerprint()


@needs_musicnn
def test_audio_tag_command_prints_json_and_fails_on_undecodable_files(tmp_path: Path, capsys) -> None:
    from melscribe.cli import main

    sf.write(tmp_path / "beat.wav", beat(4.0), 16000)
    sf.write(tmp_path / "beat.mp3", beat(4.0), 16000)  # libsndfile (soundfile) reads MP3 and OGG Vorbis too
    sf.write(tmp_path / "beat.ogg", beat(4.0), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.ogg").write_bytes(b"OggS not really")
    rc = main(["audio", "tag", str(tmp_path), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 1
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"beat.wav", "beat.mp3", "beat.ogg", "empty.wav", "junk.ogg"}
    assert all("tags" in by_name[n] for n in ("beat.mp3", "beat.ogg"))
    good = by_name["beat.wav"]
    assert len(good["tags"]) == 50 and [p for _, p in good["tags"]] == sorted((p for _, p in good["tags"]), reverse=True)
    assert good["descriptors"] and all(isinstance(d, str) for d in good["descriptors"])
    assert "error" in by_name["empty.wav"] and "error" in by_name["junk.ogg"]
    assert main(["audio", "tag", str(tmp_path / "beat.wav")]) == 0
    assert "descriptors:" in capsys.readouterr().out


@needs_musicnn
def test_recommend_from_a_folder_of_audio_alone_on_the_command_line(tmp_path: Path, capsys) -> None:
    from melscribe.cli import main

    folder = tmp_path / "Music"
    folder.mkdir()
    sf.write(folder / "chord.wav", chord(6.0), 16000)
    sf.write(folder / "beat.flac", beat(6.0), 16000)
    args = ["--catalog", "none", "--audio-folder", str(folder), "--backend", "torch", "--model", "all-MiniLM-L6-v2"]
    assert main(["recommend", "drums and a beat", "-k", "2", "--json", *args]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [r["track_id"] for r in answer["results"]] == ["beat.flac", "chord.wav"]
    assert all(r["inferred"] and r["matched_descriptors"] for r in answer["results"])
    chord_set = next(r["descriptor_set"] for r in answer["results"] if r["track_id"] == "chord.wav")
    assert main(["recommend", ", ".join(chord_set), "-k", "1", *args]) == 0  # its own tags find it, in the table
    assert "chord.wav (audio)" in capsys.readouterr().out
    assert main(["recommend", "jazz", "--catalog", "none"]) == 2  # none needs --audio-folder
    assert "--catalog none needs --audio-folder" in capsys.readouterr().err
