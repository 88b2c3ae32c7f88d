"""The offline audio model on real music: musicnn's taggers and ``recommend()`` on rendered compositions.

    python experiments/render_music.py                      # the rendered set (a few hundred clips, labelled)
    python experiments/audio_tagging.py [--renders DIR] [--models musicnn-mtt musicnn-msd ...]

On the set ``experiments/render_music.py`` renders (labels exact by construction), for each tagger:

1. **Tagging**: per label of the tagger's vocabulary present in the set, how often the tag is among the clip's
   top 5 on clips that have the label (hit rate), how often on clips that do not (false alarms), the chance
   rate 5/50, and the tag's ROC-AUC over all clips.
2. **Threshold**: per threshold, the micro-F1 of the descriptors a clip gets (tags at or above it, at most
   ``DEFAULT_MAX_TAGS``, through :class:`melscribe.audio.tagger_space.TagDescriber`) against its true labels,
   and the precision@5 served (3.); the threshold with the best precision@5 (then F1) is kept.
3. **Retrieval**: a catalog of the renders alone (``Catalog.from_audio_folder``, the tagger in the packaged
   MiniLM's space) and :data:`REQUESTS` naming instruments, tempo or drums: precision@5 of ``recommend()`` as
   served, of the descriptor-set index alone (no audio re-ranking) and of the audio embeddings alone
   (request · audio).
4. **Throughput**: seconds of audio tagged per second on this machine, and what a 10,000-track library costs.

Writes ``experiments/results/audio_tagging.md`` and ``.json`` (commit, date, machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from melscribe.audio.files import load_audio  # noqa: E402
from melscribe.audio.musicnn import MusicnnTagger  # noqa: E402
from melscribe.audio.tagger_space import (  # noqa: E402
    DEFAULT_MAX_TAGS, DEFAULT_TAGGER, DEFAULT_THRESHOLD, TagDescriber, TaggerTextModel, tag_descriptor, tag_files,
)
from melscribe.config import home_dir  # noqa: E402
from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.evaluation.protocol import provenance  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402
from melscribe.serve.catalog import Catalog  # noqa: E402
from melscribe.serve.recommend import Recommender  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = [round(x, 2) for x in np.arange(0.05, 0.55, 0.05)]
TOP = 5


def _has(*classes: str):
    return lambda clip: clip["instrumentation"] in classes


def _and(a, b):
    return lambda clip: a(clip) and b(clip)


def _tempo(kind: str):
    return lambda clip: clip["tempo_class"] == kind


def _drums(clip: dict) -> bool:
    return clip["has_drums"] == "True"


#: (request, relevant clips, names an instrument the taggers know). Violin and cello requests count the string
#: quartets as relevant (they play both); "organ" is in neither tagger's vocabulary: reported, not counted.
REQUESTS = [
    ("solo piano", _and(_has("piano"), lambda c: not _drums(c)), True),
    ("piano music", _has("piano"), True),
    ("harpsichord", _has("harpsichord"), True),
    ("a string quartet", _has("string_quartet"), True),
    ("violin", _has("violin", "string_quartet"), True),
    ("cello", _has("cello", "string_quartet"), True),
    ("flute melody", _has("flute"), True),
    ("acoustic guitar", _has("guitar_nylon"), True),
    ("fast guitar music", _and(_has("guitar_nylon", "guitar_distorted"), _tempo("fast")), True),
    ("harp", _has("harp"), True),
    ("a choir singing", _has("choir"), True),
    ("synthesizer", _has("synth_pad", "synth_lead"), True),
    ("music with drums", _drums, True),
    ("slow organ", _and(_has("organ"), _tempo("slow")), False),
    ("slow calm music", _tempo("slow"), False),
    ("fast music", _tempo("fast"), False),
]


def read_manifest(folder: Path) -> list[dict]:
    """The rendered clips, with their labels as lists."""
    with (folder / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key in ("mtt_tags", "msd_tags", "mtt_style_tags", "msd_style_tags"):
            r[key] = [t for t in r[key].split(";") if t]
        r["path"] = folder / r["file"]
    return rows


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC-AUC of ``scores`` for the boolean ``positive`` (Mann–Whitney), ``None`` without both classes."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores)) if 0 < positive.sum() < len(positive) else None


def tagging_table(tags: tuple[str, ...], probs: np.ndarray, labels: list[list[str]]) -> list[dict]:
    """Per tag with at least one positive clip: hit rate in the top 5, false alarms, AUC."""
    top = np.argsort(-probs, axis=1)[:, :TOP]
    rows = []
    for j, tag in enumerate(tags):
        positive = np.array([tag in lab for lab in labels])
        if not positive.any():
            continue
        in_top = (top == j).any(axis=1)
        rows.append({"tag": tag, "clips": int(positive.sum()), "hit_rate": float(in_top[positive].mean()),
                     "false_alarms": float(in_top[~positive].mean()) if (~positive).any() else None,
                     "auc": roc_auc(probs[:, j], positive)})
    return rows


def threshold_curve(tags: tuple[str, ...], probs: np.ndarray, labels: list[list[str]]) -> list[dict]:
    """Micro precision, recall and F1 of the descriptors given at each threshold against the true ones."""
    truth = [{tag_descriptor(t) for t in lab if t in tags} for lab in labels]
    out = []
    for threshold in THRESHOLDS:
        given = TagDescriber(tags, threshold=threshold, max_tags=DEFAULT_MAX_TAGS).describe(probs)
        hits = sum(len({d for d, _ in g} & t) for g, t in zip(given, truth))
        n_given, n_true = sum(len(g) for g in given), sum(len(t) for t in truth)
        p, r = hits / max(n_given, 1), hits / max(n_true, 1)
        out.append({"threshold": threshold, "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9),
                    "descriptors_per_clip": n_given / len(given)})
    return out


def retrieval(model: TaggerTextModel, folder: Path, clips: list[dict]) -> list[dict]:
    """Precision@5 per request: served, index alone, audio alone."""
    by_id = {c["file"]: c for c in clips}
    catalog = Catalog.from_audio_folder(folder, model)
    served = Recommender(model.encoder, catalog)
    index_only = Recommender(model.encoder, catalog, audio_rerank=False, index=served.index)
    ids = list(catalog.audio.track_ids)
    rows = []
    for request, relevant, known in REQUESTS:
        query = model.encoder.encode([request])[0]
        audio_top = [ids[i] for i in np.argsort(-(catalog.audio.embeddings @ query), kind="stable")[:TOP]]
        row = {"request": request, "known_instrument": known,
               "relevant_clips": sum(relevant(c) for c in clips)}
        for name, found in (("served", [r.track_id for r in served.recommend(request, k=TOP)]),
                            ("index_only", [r.track_id for r in index_only.recommend(request, k=TOP)]),
                            ("audio_only", audio_top)):
            row[name] = sum(relevant(by_id[t]) for t in found) / TOP
        row["served_top"] = [(t.track_id, list(t.matched_descriptors)) for t in served.recommend(request, k=TOP)][:3]
        rows.append(row)
    return rows


def throughput(tagger: MusicnnTagger, clips: list[dict], n: int = 20) -> dict:
    """Seconds of audio tagged per second (decoding included), over ``n`` clips not read from any cache."""
    paths = [c["path"] for c in clips[:n]]
    start = time.perf_counter()
    waves = [load_audio(p, tagger.sample_rate) for p in paths]
    tagger.tag_probabilities(waves)
    seconds = time.perf_counter() - start
    audio = sum(len(w) for w in waves) / tagger.sample_rate
    rate = audio / seconds
    return {"clips": len(paths), "audio_seconds": round(audio, 1), "wall_seconds": round(seconds, 2),
            "audio_seconds_per_second": round(rate, 1),
            "library_10k_minutes_at_30s": round(10_000 * 30 / rate / 60, 1),
            "library_10k_hours_at_4min": round(10_000 * 240 / rate / 3600, 2)}


def run_model(name: str, folder: Path, clips: list[dict], encoder: TextEncoder) -> dict:
    """Everything measured for one tagger."""
    tagger = MusicnnTagger.load(name)
    key = "mtt" if "mtt" in name else "msd"
    tagged = tag_files(tagger, [c["path"] for c in clips])
    if tagged.failures:
        raise SystemExit(f"{len(tagged.failures)} render(s) could not be decoded: {tagged.failures[:3]}")
    probs = tagged.embeddings
    truth = [c[f"{key}_tags"] for c in clips]
    style = [c[f"{key}_tags"] + c[f"{key}_style_tags"] for c in clips]
    curve = threshold_curve(tagger.tags, probs, truth)
    for row in curve:  # what users get: precision@5 served, on the requests naming a known instrument
        found = retrieval(TaggerTextModel(tagger, encoder, threshold=row["threshold"]), folder, clips)
        row["served_p5"] = float(np.mean([r["served"] for r in found if r["known_instrument"]]))
    best = max(curve, key=lambda r: (round(r["served_p5"], 3), r["f1"]))
    model = TaggerTextModel(tagger, encoder, threshold=best["threshold"])
    return {"tagger": name, "tagging": tagging_table(tagger.tags, probs, truth),
            "tagging_with_style": tagging_table(tagger.tags, probs, style),
            "threshold_curve": curve, "best_threshold": best["threshold"],
            "retrieval": retrieval(model, folder, clips), "throughput": throughput(tagger, clips)}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}"


def to_markdown(result: dict) -> str:
    """The report."""
    prov = result["provenance"]
    lines = ["# The offline audio model on rendered music", "",
             f"`{result['command']}` — commit {prov['commit']}, {prov['date']}, {prov['machine']}.", "",
             f"{result['clips']} clips of {result['seconds']:.0f} s at most, rendered by `{result['render_command']}` "
             f"(classes: {result['classes']}).", "",
             "## Summary", "",
             "| tagger | mean ROC-AUC (true labels) | threshold (chosen) | precision@5 served, instrument requests | "
             "s of audio tagged per s |", "|---|---:|---:|---:|---:|"]
    for m in result["models"]:
        aucs = [r["auc"] for r in m["tagging"] if r["auc"] is not None]
        known = [r["served"] for r in m["retrieval"] if r["known_instrument"]]
        lines.append(f"| {m['tagger']} | {np.mean(aucs):.3f} | {m['best_threshold']:.2f} | {_pct(np.mean(known))} % | "
                     f"{m['throughput']['audio_seconds_per_second']} |")
    lines += ["", f"melscribe's default (`melscribe.audio.tagger_space`): **{DEFAULT_TAGGER}** at threshold "
                  f"**{DEFAULT_THRESHOLD}**: the MagnaTagATune taggers know the instruments and separate them "
                  "(ROC-AUC), the Million Song Dataset ones mostly genres and eras; the VGG variant retrieves as well "
                  "and tags faster, with a lower AUC.", ""]
    for m in result["models"]:
        lines += [f"## {m['tagger']}", "", "### Tagging: is the true tag in the clip's top 5?", "",
                  f"Chance: {100 * TOP / 50:.0f} %. False alarms: the tag in the top 5 of clips without the label.", "",
                  "| tag | clips | top-5 hit rate % | false alarms % | ROC-AUC |", "|---|---:|---:|---:|---:|"]
        for r in sorted(m["tagging"], key=lambda r: -r["hit_rate"]):
            auc = "–" if r["auc"] is None else f"{r['auc']:.3f}"
            lines.append(f"| {r['tag']} | {r['clips']} | {_pct(r['hit_rate'])} | {_pct(r['false_alarms'])} | {auc} |")
        aucs = [r["auc"] for r in m["tagging"] if r["auc"] is not None]
        lines += ["", f"Mean ROC-AUC over these tags: **{np.mean(aucs):.3f}**.", "",
                  "### Which tags describe a clip: threshold", "",
                  "Descriptors given against the true labels (micro), and precision@5 served on the requests "
                  "naming a known instrument; the best precision@5 (then F1) is the threshold used below.", "",
                  "| threshold | precision % | recall % | F1 % | descriptors per clip | served P@5 % |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for r in m["threshold_curve"]:
            mark = " **(best)**" if r["threshold"] == m["best_threshold"] else ""
            lines.append(f"| {r['threshold']:.2f}{mark} | {_pct(r['precision'])} | {_pct(r['recall'])} | "
                         f"{_pct(r['f1'])} | {r['descriptors_per_clip']:.1f} | {_pct(r['served_p5'])} |")
        lines += ["", f"### Retrieval: precision@5 of `recommend()` on a catalog of the renders alone "
                      f"(threshold {m['best_threshold']:.2f})", "",
                  "| request | relevant clips | served | index alone | audio alone |", "|---|---:|---:|---:|---:|"]
        for r in m["retrieval"]:
            star = "" if r["known_instrument"] else " *"
            lines.append(f"| {r['request']}{star} | {r['relevant_clips']} | {_pct(r['served'])} | "
                         f"{_pct(r['index_only'])} | {_pct(r['audio_only'])} |")
        known = [r for r in m["retrieval"] if r["known_instrument"]]
        lines += ["", "\\* not counted: an instrument neither tagger knows (organ) or tempo alone.", "",
                  f"Requests naming an instrument the tagger knows ({len(known)}): mean precision@5 served "
                  f"**{_pct(np.mean([r['served'] for r in known]))} %**, index alone "
                  f"{_pct(np.mean([r['index_only'] for r in known]))} %, audio alone "
                  f"{_pct(np.mean([r['audio_only'] for r in known]))} %.", ""]
        t = m["throughput"]
        lines += ["### Throughput", "",
                  f"{t['audio_seconds_per_second']} s of audio per second (decoding included; {t['clips']} clips, "
                  f"{t['audio_seconds']} s of audio in {t['wall_seconds']} s): a 10,000-track library takes "
                  f"{t['library_10k_minutes_at_30s']} min at 30 s a track, {t['library_10k_hours_at_4min']} h at "
                  "4 min a track (whole tracks tagged), once; the tags are cached by file content.", ""]
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, measure each tagger, write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--renders", type=Path, default=home_dir() / "renders" / "seed0",
                   help="the folder experiments/render_music.py wrote (default $MELSCRIBE_HOME/renders/seed0)")
    p.add_argument("--models", nargs="+", default=["musicnn-mtt", "musicnn-msd", "musicnn-mtt-vgg", "musicnn-msd-vgg"])
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="the bi-encoder (default: the packaged MiniLM)")
    p.add_argument("--out", type=Path, default=RESULTS / "audio_tagging")
    p.add_argument("--report-only", action="store_true", help="rewrite OUT.md from OUT.json, measuring nothing")
    args = p.parse_args()
    if args.report_only:
        result = json.loads(args.out.with_suffix(".json").read_text())
        write_text_atomic(args.out.with_suffix(".md"), to_markdown(result) + "\n")
        return
    clips = read_manifest(args.renders)
    info = json.loads((args.renders / "render_info.json").read_text())
    encoder = TextEncoder(args.model, backend="onnx")
    result = {"command": "python experiments/audio_tagging.py " + " ".join(sys.argv[1:]),
              "render_command": info.get("command", "python experiments/render_music.py"),
              "clips": len(clips), "seconds": max(float(c["seconds"]) for c in clips),
              "classes": ", ".join(sorted({c["instrumentation"] for c in clips})),
              "encoder": encoder.name, "provenance": provenance(),
              "models": [run_model(name, args.renders, clips, encoder) for name in args.models]}
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(result, indent=2, default=str) + "\n")
    write_text_atomic(args.out.with_suffix(".md"), to_markdown(result) + "\n")
    print(to_markdown(result))


if __name__ == "__main__":
    main()
