"""Is melscribe's PyTorch port of musicnn's four taggers faithful to the original TensorFlow graph?

Two parts, run by two Python environments:

    # 1. the original: TensorFlow builds musicnn's own graph (musicnn.models) and restores each checkpoint
    python -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.21.*" "tf_keras==2.21.*" librosa numpy
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfvenv/bin/python experiments/musicnn_faithful.py tf --out /tmp/musicnn_tf.npz

    # 2. the port (project venv): compare, time, write the results and the tests' reference outputs
    python experiments/musicnn_faithful.py compare --tf /tmp/musicnn_tf.npz [--write-reference]

Inputs, made here from fixed seeds: random "log-mel" patches (network faithfulness: both sides get the
same patches) and synthetic clips — harmonic tones, drum-like thumps and clicks, noise — at a quiet and
a loud level (front end and whole pipeline). The original front end is musicnn's
``extractor.batch_data`` with librosa 0.7's reflect-padded frames, run as shipped (mel power cast to
float16 before ``log10(10000·x + 1)``, which overflows on loud audio) and in float32.
Writes ``experiments/results/musicnn_faithful.{md,json}``; with ``--write-reference``, also
``tests/audio/data/musicnn_reference.npz`` (TensorFlow's outputs for the tests' inputs, no weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "musicnn_faithful"
REFERENCE = ROOT / "tests" / "audio" / "data" / "musicnn_reference.npz"

#: musicnn model folder -> melscribe tagger name.
MODELS = {"MTT_musicnn": "musicnn-mtt", "MSD_musicnn": "musicnn-msd", "MTT_vgg": "musicnn-mtt-vgg", "MSD_vgg": "musicnn-msd-vgg"}
SR, N_FFT, HOP, N_MELS, PATCH_FRAMES = 16000, 512, 256, 96, 187
#: Peak amplitude of the synthetic clips at each loudness.
LEVELS = {"quiet": 0.02, "loud": 0.9}
CLIP_SEEDS, CLIP_SECONDS = (1, 2, 3), 10.0
N_RANDOM_PATCHES = 8
#: The tests' inputs: the first random patches, and short clips of these seeds at both levels.
REFERENCE_PATCHES, REFERENCE_SEEDS, REFERENCE_SECONDS = 3, (11, 12), 7.0


def random_patches(n: int) -> np.ndarray:
    """``n`` random log-mel-like patches ``(n, 187, 96)`` in [0, 4), patch ``i`` drawn from seed ``i``."""
    return np.stack([np.random.default_rng(i).uniform(0, 4, (PATCH_FRAMES, N_MELS)) for i in range(n)]).astype(np.float32)


def synthetic_audio(seed: int, seconds: float, peak: float) -> np.ndarray:
    """Music-like 16 kHz test audio scaled to ``peak``: three decaying harmonic notes, a drum-like
    60 Hz thump and noise click on a steady beat, and background noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.05 * rng.standard_normal(len(t))
    for _ in range(3):
        f0, onset, decay = rng.uniform(80, 600), rng.uniform(0, seconds / 2), rng.uniform(0.3, 2.0)
        envelope = np.where(t >= onset, np.exp(-(t - onset) * decay), 0.0)
        y += envelope * sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 8))
    since_beat = t % rng.uniform(0.3, 0.6)
    y += 2 * np.exp(-30 * since_beat) * np.sin(2 * np.pi * 60 * since_beat)
    y += np.exp(-80 * since_beat) * rng.standard_normal(len(t))
    return (peak * y / np.abs(y).max()).astype(np.float32)


def clips(seeds: tuple[int, ...], seconds: float) -> dict[str, np.ndarray]:
    """The synthetic clips of ``seeds`` at every level, named ``<level>-<seed>``."""
    return {f"{level}-{seed}": synthetic_audio(seed, seconds, peak) for level, peak in LEVELS.items() for seed in seeds}


# ---------------------------------------------------------------------------------------- the TensorFlow part


def run_tf(out: Path) -> None:
    """Run musicnn's original graph and front end on every input; save everything to ``out``."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers needs tf_keras on TF 2.16+
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import librosa
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    all_clips = {**clips(CLIP_SEEDS, CLIP_SECONDS), **{f"ref-{k}": v for k, v in clips(REFERENCE_SEEDS, REFERENCE_SECONDS).items()}}
    saved = {"librosa_mel_basis": librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS),
             "versions": np.array(f"tensorflow {tf.__version__}, librosa {librosa.__version__}"),
             "command": np.array(" ".join([sys.executable, *sys.argv]))}
    for name, y in all_clips.items():
        for precision in ("float16", "float32"):
            saved[f"logmel/{precision}/{name}"] = original_log_mel(librosa, y, precision)
        saved[f"mel_power_max/{name}"] = np.array(original_log_mel(librosa, y, None).max())
    for model in MODELS:
        predict = tf_model(tf, model)
        saved[f"net/{model}"] = predict(random_patches(N_RANDOM_PATCHES))
        for name in all_clips:
            for precision in ("float16", "float32"):
                frames = saved[f"logmel/{precision}/{name}"]
                saved[f"tags/{model}/{precision}/{name}"] = predict(original_patches(frames)).mean(axis=0)
    np.savez_compressed(out, **saved)
    print(f"wrote {out}")


def original_log_mel(librosa, y: np.ndarray, precision: str | None) -> np.ndarray:
    """musicnn's ``batch_data`` spectrogram with librosa 0.7's reflect padding; ``precision`` "float16"
    as shipped, "float32" without the cast, None for the mel power itself."""
    mel = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS, pad_mode="reflect").T
    if precision is None:
        return mel
    with np.errstate(over="ignore"):
        return np.log10(10000 * mel.astype(precision) + 1)


def original_patches(frames: np.ndarray) -> np.ndarray:
    """``batch_data``'s non-overlapping 187-frame patches, as float32 (TensorFlow's placeholder type)."""
    starts = range(0, len(frames) - PATCH_FRAMES + 1, PATCH_FRAMES)
    return np.stack([frames[s : s + PATCH_FRAMES] for s in starts]).astype(np.float32)


def tf_model(tf, model: str):
    """A function patches -> sigmoid probabilities through musicnn's graph with ``model``'s checkpoint."""
    import musicnn
    from musicnn import models

    graph = tf.Graph()
    with graph.as_default(), tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        probabilities = tf.nn.sigmoid(models.define_model(x, is_training, model, 50)[0])
        session = tf.compat.v1.Session(graph=graph)
        tf.compat.v1.train.Saver().restore(session, f"{os.path.dirname(musicnn.__file__)}/{model}/")
    return lambda patches: session.run(probabilities, {x: patches, is_training: False})


# ---------------------------------------------------------------------------------------------- the port part


def compare(tf_file: Path, write_reference: bool) -> dict:
    """Compare the port (both backends) with the TensorFlow outputs in ``tf_file``; time it; the result as a dict."""
    sys.path.insert(0, str(ROOT))
    from melscribe.audio.musicnn import MusicnnTagger
    from melscribe.audio.musicnn.tagger import BACKENDS
    from melscribe.audio.musicnn.frontend import log_mel, mel_filterbank

    tf_out = dict(np.load(tf_file))
    clip_set = clips(CLIP_SEEDS, CLIP_SECONDS)
    result = {"tf_versions": str(tf_out["versions"]), "tf_command": str(tf_out["command"]),
              "filterbank_max_abs_diff": float(np.abs(mel_filterbank() - tf_out["librosa_mel_basis"]).max()),
              "mel_power_max": {n: float(tf_out[f"mel_power_max/{n}"]) for n in clip_set},
              "front_end": front_end_figures(tf_out, clip_set, log_mel), "models": {},
              "load_average_before": os.getloadavg()[0]}
    for model, name in MODELS.items():
        taggers = {backend: MusicnnTagger.load(name, backend=backend) for backend in BACKENDS}
        result["models"][model] = model_figures(taggers, tf_out, model, clip_set)
    if write_reference:
        write_reference_file(tf_out)
    return result


def front_end_figures(tf_out: dict, clip_set: dict, log_mel) -> dict:
    """Max |Δ log-mel| of the port against the original in float32 and as shipped (float16), per level."""
    figures = {}
    for level in LEVELS:
        names = [n for n in clip_set if n.startswith(level)]
        port = {n: log_mel(clip_set[n]) for n in names}
        f16 = [tf_out[f"logmel/float16/{n}"].astype(np.float32) for n in names]
        figures[level] = {
            "vs_float32": max(float(np.abs(port[n] - tf_out[f"logmel/float32/{n}"]).max()) for n in names),
            "vs_float16_finite": max(float(np.abs(port[n] - f)[np.isfinite(f)].max()) for n, f in zip(names, f16)),
            "float16_inf_share": float(np.mean([np.isinf(f).mean() for f in f16])),
        }
    return figures


def model_figures(taggers: dict, tf_out: dict, model: str, clip_set: dict) -> dict:
    """One model's network-level and clip-level differences per backend, the loud clips' tags (default
    backend), and the speed of each backend."""
    patches, waveforms = random_patches(N_RANDOM_PATCHES), list(clip_set.values())
    figures = {"network_max_abs_diff": {}, "clips": {}, "seconds_of_audio_per_second": {}}
    tags = {}
    for backend, tagger in taggers.items():
        diff = np.abs(tagger.patch_probabilities(patches) - tf_out[f"net/{model}"]).max()
        figures["network_max_abs_diff"][backend] = float(diff)
        tags[backend] = dict(zip(clip_set, tagger.tag_probabilities(waveforms)))
        figures["seconds_of_audio_per_second"][backend] = throughput(tagger, waveforms)
    for level in LEVELS:
        names = [n for n in clip_set if n.startswith(level)]
        figures["clips"][level] = clip_figures(tags, taggers["onnx"].tags, tf_out, model, names)
    return figures


def clip_figures(tags: dict, labels: tuple[str, ...], tf_out: dict, model: str, names: list[str]) -> dict:
    """Tag probabilities of the clips ``names``: the port's (``tags[backend][clip]``) against the original's
    in float32 and as shipped, how much the clips' tags differ from each other, their top tags."""
    original = {p: np.stack([tf_out[f"tags/{model}/{p}/{n}"] for n in names]) for p in ("float16", "float32")}
    port = {b: np.stack([t[n] for n in names]) for b, t in tags.items()}
    return {
        "vs_float32_max_abs_diff": {b: float(np.abs(p - original["float32"]).max()) for b, p in port.items()},
        "vs_float16_max_abs_diff": float(np.abs(port["onnx"] - original["float16"]).max()),
        "spread_across_clips": {"port": spread(port["onnx"]), "float16": spread(original["float16"])},
        "top3": {n: {"port": top(labels, p), "float16": top(labels, o)}
                 for n, p, o in zip(names, port["onnx"], original["float16"])},
    }


def spread(rows: np.ndarray) -> float:
    """Max over tags of (max − min across the rows): 0 when every clip gets the same tags."""
    return float((rows.max(axis=0) - rows.min(axis=0)).max())


def top(labels: tuple[str, ...], probabilities: np.ndarray) -> list[str]:
    """The three most probable tags, with their probability."""
    return [f"{labels[i]} {probabilities[i]:.2f}" for i in np.argsort(-probabilities)[:3]]


def throughput(tagger, waveforms: list[np.ndarray], repeats: int = 3) -> float:
    """Seconds of audio tagged per wall-clock second by ``tag_probabilities``: the best of ``repeats``
    calls on all ``waveforms`` (the machine is shared)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        tagger.tag_probabilities(waveforms)
        seconds.append(time.perf_counter() - start)
    return sum(len(w) for w in waveforms) / SR / min(seconds)


def write_reference_file(tf_out: dict) -> None:
    """TensorFlow's outputs for the tests' inputs (their inputs are regenerated from the seeds)."""
    ref = {"librosa_mel_basis": tf_out["librosa_mel_basis"]}
    for model in MODELS:
        ref[f"patches/{model}"] = tf_out[f"net/{model}"][:REFERENCE_PATCHES]
        for name in clips(REFERENCE_SEEDS, REFERENCE_SECONDS):
            for precision in ("float16", "float32"):
                ref[f"tags/{model}/{precision}/{name}"] = tf_out[f"tags/{model}/{precision}/ref-{name}"]
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **ref)
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)")


# ------------------------------------------------------------------------------------------------ the report


def markdown(result: dict, command: str) -> str:
    """The result as a Markdown report."""
    p = result["provenance"]
    lines = [
        "# musicnn in PyTorch against the original TensorFlow graph", "",
        f"`{command}` — commit {p['commit']}, {p['date']}, {p['machine']}.", "",
        f"The original's outputs: `{result['tf_command']}` ({result['tf_versions']}; musicnn 0.1.0's own graph, "
        "`musicnn.models`, restored from each checkpoint).", "",
        f"Mel filterbank against `librosa.filters.mel`: max |Δ| = {result['filterbank_max_abs_diff']:.1e}.", "",
        "## Network: the same log-mel patches into both", "",
        f"{N_RANDOM_PATCHES} random patches; max |Δ probability| over 50 tags. Speed: seconds of audio tagged per "
        f"second by `tag_probabilities` ({len(CLIP_SEEDS) * len(LEVELS)} clips of {CLIP_SECONDS:.0f} s, best of 3; "
        f"the machine was shared: load average {result['load_average_before']:.1f} before the run).", "",
        "| model | max \\|Δ prob\\| onnx | torch | speed onnx | speed torch |", "|---|---|---|---|---|",
    ]
    for model, m in result["models"].items():
        d, v = m["network_max_abs_diff"], m["seconds_of_audio_per_second"]
        lines.append(f"| {model} | {d['onnx']:.1e} | {d['torch']:.1e} | {v['onnx']:.0f} | {v['torch']:.0f} |")
    lines += ["", "## Front end: log-mel frames of the same audio", "",
              f"{len(CLIP_SEEDS)} synthetic clips of {CLIP_SECONDS:.0f} s per level; peak amplitude "
              + ", ".join(f"{k} {v}" for k, v in LEVELS.items()) + "; max mel power per clip "
              + ", ".join(f"{k} {v:.3g}" for k, v in result["mel_power_max"].items()) + ".", "",
              "| level | port vs original float32 | port vs original float16 (finite frames) | original float16: inf share |",
              "|---|---|---|---|"]
    for level, f in result["front_end"].items():
        lines.append(f"| {level} | {f['vs_float32']:.1e} | {f['vs_float16_finite']:.1e} | {f['float16_inf_share']:.1%} |")
    lines += ["", "## Whole pipeline: tag probabilities (mean over 3-s patches) of the same audio", "",
              "Max |Δ probability| of the port (onnx, and torch in brackets) against the original computed in float32 "
              "and as shipped (float16); spread across clips: max over tags of (max − min over the level's clips).", "",
              "| model | level | vs original float32 | vs original float16 | "
              "spread across clips: port | spread: original float16 |", "|---|---|---|---|---|---|"]
    for model, m in result["models"].items():
        for level, c in m["clips"].items():
            s, v32 = c["spread_across_clips"], c["vs_float32_max_abs_diff"]
            cells = [f"{v32['onnx']:.1e} ({v32['torch']:.1e})", f"{c['vs_float16_max_abs_diff']:.1e}",
                     f"{s['port']:.3f}", f"{s['float16']:.3f}"]
            lines.append(f"| {model} | {level} | " + " | ".join(cells) + " |")
    lines += ["", "As shipped, musicnn casts the mel power to float16 before `10000·x`, so a mel power above "
              "65504 / 10000 ≈ 6.55 becomes inf; a spread of 0 means every clip of the level got the same tags. "
              "The port computes in float32.", "",
              "Top tags of the loud clips (port / original as shipped):", ""]
    for model, m in result["models"].items():
        for clip, t in m["clips"]["loud"]["top3"].items():
            lines.append(f"- {model} {clip}: {', '.join(t['port'])} / {', '.join(t['float16'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse the arguments and run one part."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="part", required=True)
    tf_part = sub.add_parser("tf", help="run the original TensorFlow models (in the throwaway venv)")
    tf_part.add_argument("--out", type=Path, default=Path("/tmp/musicnn_tf.npz"))
    port = sub.add_parser("compare", help="compare the port with the TensorFlow outputs (project venv)")
    port.add_argument("--tf", type=Path, default=Path("/tmp/musicnn_tf.npz"), help="the npz the tf part wrote")
    port.add_argument("--write-reference", action="store_true", help=f"also write {REFERENCE.relative_to(ROOT)}")
    args = p.parse_args()
    if args.part == "tf":
        run_tf(args.out)
        return
    result = compare(args.tf, args.write_reference)
    from melscribe.evaluation.protocol import provenance
    from melscribe.fileio import write_text_atomic

    command = "python experiments/musicnn_faithful.py " + " ".join(sys.argv[1:])
    result = {"command": command, "provenance": provenance(), **result}
    write_text_atomic(RESULTS.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomic(RESULTS.with_suffix(".md"), markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
