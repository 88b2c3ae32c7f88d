"""The rendered-music set (experiment code in experiments/rendering.py, command line
experiments/render_music.py): the seeded plan, and three short real renders of a tiny in-test score
through FluidSynth and the General MIDI SoundFont."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

import rendering
from rendering import CLASSES, GM_PROGRAMS, PIECES, Render, Settings, plan, tags


def test_plan_is_seeded_balanced_and_paired() -> None:
    renders = plan(40, seed=0)
    assert renders == plan(40, seed=0) and renders != plan(40, seed=1)
    assert len(renders) == 320 and len({r.file for r in renders}) == 320
    assert len({r.piece for r in renders}) == 40 and {r.piece for r in renders} <= {p for _, p in PIECES}
    drums = [r for r in renders if r.drums]
    assert len(drums) == 80 and all(r.twin in renders for r in drums)
    assert sum(r.tempo_class == "slow" for r in renders) == 160
    for r in renders:
        lo, hi = rendering.SLOW_BPM if r.tempo_class == "slow" else rendering.FAST_BPM
        assert lo <= r.bpm <= hi
        assert not (r.group == "folk" and CLASSES[r.instrumentation].polyphonic)
    per_class = {c: sum(r.instrumentation == c for r in renders if not r.drums) for c in CLASSES}
    assert max(per_class.values()) - min(v for c, v in per_class.items() if c != "string_quartet") <= 2


def test_command_line_dry_run_prints_the_composition(capsys: pytest.CaptureFixture[str]) -> None:
    import render_music

    assert render_music.main(["--small", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("20 clips from 4 pieces") and "| all | " in out


def musicnn_labels(variable: str) -> list[str]:
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("musicnn is not installed (its configuration.py holds the tag vocabularies)")
    tree = ast.parse((Path(spec.submodule_search_locations[0]) / "configuration.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"musicnn's configuration.py has no {variable}")


def test_tags_are_in_musicnn_vocabularies() -> None:
    mtt, msd = set(musicnn_labels("MTT_LABELS")), set(musicnn_labels("MSD_LABELS"))
    for c in CLASSES:
        for tempo in ("slow", "fast"):
            for drums in (False, True):
                for group in ("chorale", "folk"):
                    t = tags(Render("x", group, c, tempo, 60, drums))
                    assert set(t["mtt_tags"] + t["mtt_style_tags"]) <= mtt, (c, t)
                    assert set(t["msd_tags"] + t["msd_style_tags"]) <= msd, (c, t)
    assert "organ" not in mtt  # why the organ class has no instrument tag
    assert tags(Render("x", "chorale", "piano", "slow", 60, True))["mtt_tags"] == [
        "piano", "drums", "beat", "beats", "slow", "no vocals", "no vocal", "no voice"]


def tiny_score():
    """Four parts, 4/4, a quarter-note pickup, two bars and a half: a short chorale-like phrase."""
    pytest.importorskip("music21", reason="music21 is not installed (pip install music21)")
    from music21 import meter, note, stream

    lines = {"soprano": [72, 72, 74, 76, 74, 72, 71, 72, 72],
             "alto": [67, 67, 67, 67, 65, 64, 62, 64, 64],
             "tenor": [64, 64, 65, 60, 60, 60, 62, 60, 60],
             "bass": [48, 57, 53, 48, 53, 57, 55, 48, 48]}
    score = stream.Score()
    for name, pitches in lines.items():
        part = stream.Part(id=name)
        pickup = stream.Measure(number=0)
        pickup.append(meter.TimeSignature("4/4"))
        pickup.append(note.Note(pitches[0], quarterLength=1))
        pickup.paddingLeft = 3.0
        part.append(pickup)
        rest = pitches[1:]
        for b in range(2):
            m = stream.Measure(number=b + 1)
            for p in rest[4 * b:4 * b + 4]:
                m.append(note.Note(p, quarterLength=1))
            part.append(m)
        score.insert(0, part)
    return score


def test_music_from_score_keeps_parts_meter_and_downbeat() -> None:
    music = rendering.music_from_score(tiny_score())
    assert len(music.parts) == 4 and [len(p) for p in music.parts] == [9, 9, 9, 9]
    assert (music.beat, music.bar, music.downbeat, music.period) == (1.0, 4.0, 1.0, 12.0)
    midi = rendering.midi_file(music, CLASSES["string_quartet"], 60, True, 5.0)
    assert midi.startswith(b"MThd") and bytes([0xC0, GM_PROGRAMS["violin"]]) in midi
    assert bytes([0x99, rendering.KICK]) in midi  # a kick on channel 10


def test_renders_three_clips_with_manifest(tmp_path: Path) -> None:
    if shutil.which("fluidsynth") is None:
        pytest.skip("the fluidsynth command is not installed (Debian: apt-get install fluidsynth)")
    if not rendering.SOUNDFONT.is_file():
        pytest.skip(f"no SoundFont at {rendering.SOUNDFONT} (Debian: apt-get install fluid-soundfont-gm)")
    score = tiny_score()
    piece = "test/tiny.mxl"
    renders = [Render(piece, "chorale", "piano", "slow", 60), Render(piece, "chorale", "piano", "slow", 60, drums=True),
               Render(piece, "chorale", "string_quartet", "fast", 160)]
    settings = Settings(seconds=4.0)
    loads = []
    rows = rendering.render_set(tmp_path, renders, settings, loader=lambda p: loads.append(p) or score,
                                progress=False)
    assert loads == [piece]
    manifest = rendering.read_manifest(tmp_path / "manifest.csv")
    assert [r["file"] for r in manifest] == [r.file for r in renders] == [r["file"] for r in rows]
    assert manifest[0]["file"] == "test-tiny__piano__slow60.wav" and manifest[1]["twin"] == manifest[0]["file"]
    assert manifest[1]["has_drums"] == "True" and "drums" in manifest[1]["mtt_tags"]
    assert manifest[1]["instruments"] == ["acoustic grand piano", rendering.DRUM_KIT]
    assert manifest[2]["instruments"] == ["violin", "viola", "cello"]
    assert manifest[2]["gm_programs"] == ["40", "41", "42"]
    assert manifest[2]["tempo_class"] == "fast" and manifest[2]["tempo_bpm"] == "160"

    import soundfile as sf

    audio = {}
    for r in manifest:
        info = sf.info(tmp_path / r["file"])
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 64000)
        y, _ = sf.read(tmp_path / r["file"], dtype="float64")
        assert abs(rendering.db(rendering.rms(y)) - settings.loudness_dbfs) < 0.3
        assert np.max(np.abs(y)) <= 10 ** (settings.peak_dbfs / 20) + 1e-4
        assert rendering.rms(y[:1600]) > 10 ** (-40 / 20)  # no silence at the start
        audio[r["file"]] = y
    plain, drums = audio[manifest[0]["file"]], audio[manifest[1]["file"]]
    k = float(plain @ drums / (plain @ plain))  # the drum clip is its twin plus a drum track
    residual = drums - k * plain
    assert 0.7 < k < 1.0 and -9 < rendering.db(rendering.rms(residual) / rendering.rms(k * plain)) < -3

    # a rerun renders nothing: every clip is read back and kept
    before = {f: (tmp_path / f).stat().st_mtime_ns for f in audio}
    rendering.render_set(tmp_path, renders, settings, loader=lambda p: pytest.fail("parsed again"), progress=False)
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in audio} == before
    with pytest.raises(ValueError, match="other parameters"):
        rendering.render_set(tmp_path, renders, Settings(seconds=5.0), loader=lambda p: score, progress=False)
