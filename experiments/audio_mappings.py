"""How to place a tagger's output in the bi-encoder's space: alternatives to the probability-weighted mean.

    python experiments/audio_mappings.py [--renders DIR] [--tagger musicnn-mtt]

On the rendered set (``experiments/render_music.py``), each mapping turns a clip's tag probabilities into a
vector of the bi-encoder's space; a request then ranks the clips by cosine (the "audio alone" ranking of
``experiments/audio_tagging.py``). Reported: precision@5 on the requests of that experiment naming an
instrument the tagger knows, and on all of them. Mappings:

* ``weighted mean`` (melscribe's): the probability-weighted mean of every tag's descriptor embedding;
* ``above threshold``: the same over the tags at or above the threshold only;
* ``squared weights``: weights ``p²``, sharpening towards the confident tags;
* ``described set``: the embedding of the clip's descriptor set as text (``"piano, classical, slow"``).

Writes ``experiments/results/audio_mappings.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audio_tagging import REQUESTS, TOP, read_manifest  # noqa: E402

from melscribe.audio.joint import l2_normalise  # noqa: E402
from melscribe.audio.musicnn import MusicnnTagger  # noqa: E402
from melscribe.audio.tagger_space import DEFAULT_TAGGER, DEFAULT_THRESHOLD, TaggerTextModel, tag_files  # noqa: E402
from melscribe.config import home_dir  # noqa: E402
from melscribe.encoding.encoder import TextEncoder  # noqa: E402
from melscribe.evaluation.protocol import provenance  # noqa: E402
from melscribe.fileio import write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def mappings(model: TaggerTextModel, probs: np.ndarray) -> dict[str, np.ndarray]:
    """Each mapping's ``(clips, dim)`` vectors."""
    described = model.describer.descriptor_probabilities(probs)
    emb = model.descriptor_embeddings
    above = np.where(described >= model.describer.threshold, described, 0.0)
    sets = [", ".join(d for d, _ in tags) for tags in model.describer.describe(probs)]
    return {"weighted mean": model.embed_probabilities(probs),
            "above threshold": l2_normalise(above @ emb),
            "squared weights": l2_normalise((described ** 2) @ emb),
            "described set": model.encoder.encode(sets)}


def precision_at_5(vectors: np.ndarray, clips: list[dict], encoder: TextEncoder) -> dict[str, float]:
    """Mean precision@5 over the instrument requests and over all requests."""
    rows = []
    for request, relevant, known in REQUESTS:
        top = np.argsort(-(vectors @ encoder.encode([request])[0]), kind="stable")[:TOP]
        rows.append((known, sum(relevant(clips[i]) for i in top) / TOP))
    return {"instrument_requests": float(np.mean([p for k, p in rows if k])),
            "all_requests": float(np.mean([p for _, p in rows]))}


def main() -> None:
    """Tag (from the cache), map, rank, write."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--renders", type=Path, default=home_dir() / "renders" / "seed0")
    p.add_argument("--tagger", default=DEFAULT_TAGGER)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="the bi-encoder (default: the packaged MiniLM)")
    args = p.parse_args()
    clips = read_manifest(args.renders)
    encoder = TextEncoder(args.model, backend="onnx")
    model = TaggerTextModel(MusicnnTagger.load(args.tagger), encoder, threshold=DEFAULT_THRESHOLD)
    probs = tag_files(model.tagger, [c["path"] for c in clips]).embeddings
    rows = {name: precision_at_5(v, clips, encoder) for name, v in mappings(model, probs).items()}
    result = {"command": "python experiments/audio_mappings.py " + " ".join(sys.argv[1:]), "tagger": args.tagger,
              "threshold": DEFAULT_THRESHOLD, "encoder": encoder.name, "clips": len(clips), "rows": rows,
              "provenance": provenance()}
    prov = result["provenance"]
    md = ["# Placing tag probabilities in the bi-encoder's space", "",
          f"`{result['command']}` — commit {prov['commit']}, {prov['date']}, {prov['machine']}. {len(clips)} rendered "
          f"clips, {args.tagger} at threshold {DEFAULT_THRESHOLD}, {encoder.name}; each request ranks the clips by "
          "cosine to the mapped vector (no index, no fusion).", "",
          "| mapping | precision@5, instrument requests | precision@5, all requests |", "|---|---:|---:|"]
    md += [f"| {name} | {100 * r['instrument_requests']:.0f} % | {100 * r['all_requests']:.0f} % |"
           for name, r in rows.items()]
    write_text_atomic(RESULTS / "audio_mappings.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(RESULTS / "audio_mappings.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
