"""Tiny models, indexes and data for tests that must run without a model hub or the real data.

* :func:`stub_index`: a small index of random vectors, built without a model (:class:`StubEncoder`), whose
  content :func:`check_stub_index` verifies;
* :func:`tiny_records`: a few dozen captioned tracks, for the training pipeline without the real data;
* :func:`tiny_clap`: a tiny random-weight CLAP checkpoint (``melscribe.audio.clap.ClapAudioTextModel``) on disk;
* :func:`write_musiccaps`: a small ``musiccaps-public.csv`` of given rows.

Light to import (no torch): subprocesses of the fault-injection tests import it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from melscribe.data import Record
from melscribe.audio.clap import ClapAudioTextModel
from melscribe.serve.index import DescriptorIndex

STUB_DIM = 32

GENRES = ["rock", "jazz", "pop", "techno", "folk", "metal", "reggae", "classical", "hip hop", "blues"]
INSTRUMENTS = ["piano", "acoustic guitar", "electric guitar", "violin", "saxophone", "drums", "synth", "bass",
               "flute", "trumpet"]
MOODS = ["sad", "happy", "calm", "energetic", "dark", "romantic", "epic", "relaxing"]
VOICES = ["female vocal", "male vocal", "choir", "whistling"]


def tiny_records(n: int = 40, seed: int = 0) -> list[Record]:
    """``n`` MusicCaps-like training records: five descriptors (genre, two instruments, mood, voice) and a
    two-sentence caption naming them verbatim, as the pair builder expects."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        genre, mood, voice = rng.choice(GENRES), rng.choice(MOODS), rng.choice(VOICES)
        first, second = rng.sample(INSTRUMENTS, 2)
        caption = f"A {mood} {genre} song with {first} and {second}. You can hear {voice} over the {second}."
        out.append(Record(f"track-{i:03d}", caption, (genre, first, second, mood, voice), "train", "musiccaps"))
    return out


class StubEncoder:
    """What ``DescriptorIndex.from_embeddings`` needs of an encoder, without a model."""

    name = "stub-model"
    dim = STUB_DIM
    probe = np.eye(STUB_DIM, dtype=np.float32)[0]
    encodes_each_text_alone = False


def unit_vectors(n: int, seed: int = 0, dim: int = STUB_DIM) -> np.ndarray:
    """``n`` seeded random unit vectors."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def stub_index(n: int = 300, seed: int = 0, kind: str = "flat") -> DescriptorIndex:
    """An index of ``n`` random unit vectors (``unit_vectors(n, seed)``), texts ``"set 0000"``…, a vocabulary
    of 20 descriptors, and ``seed`` in its fingerprint: indexes of different seeds differ in every file."""
    vocabulary = [f"descriptor {i:02d}" for i in range(20)]
    return DescriptorIndex.from_embeddings(unit_vectors(n, seed), [f"set {i:04d}" for i in range(n)], StubEncoder(),
                                           fingerprint=f"stub-{seed}", vocabulary=vocabulary,
                                           vocabulary_embeddings=unit_vectors(20, seed + 100), kind=kind)


def check_stub_index(index: DescriptorIndex) -> int:
    """Assert that a loaded :func:`stub_index` is one complete version (every file from the same seed);
    returns its seed."""
    seed = int(index.fingerprint.removeprefix("stub-"))
    n = len(index.texts)
    assert len(index) == n and index.texts == [f"set {i:04d}" for i in range(n)]
    np.testing.assert_array_equal(index.index.reconstruct_n(0, n), unit_vectors(n, seed))
    np.testing.assert_array_equal(index.vocabulary_embeddings, unit_vectors(20, seed + 100))
    return seed

#: Words of the tiny test tokenizer; any other word is spelt out with single-letter word pieces.
TINY_VOCABULARY = (
    "steel drums upbeat tropical calm energetic sad happy rock jazz pop ambient electronic acoustic "
    "guitar piano bass vocals violin synth slow fast loud soft dark bright noise tone sine music"
).split()


def tiny_clap(folder: str | os.PathLike, *, fusion: bool = False) -> ClapAudioTextModel:
    """A tiny random-weight CLAP checkpoint written to ``folder`` and loaded back with ``from_pretrained``.

    Two-layer text and audio towers with 16-dimensional embeddings, 16 kHz audio in 1 s windows with 16
    mel bands, a WordPiece tokenizer over :data:`TINY_VOCABULARY` plus single letters. ``fusion=True``
    gives the feature-fusion variant (like ``laion/clap-htsat-fused``: 64 mel bands, long clips seen as a
    whole plus three crops). Weights are seeded (the global torch generator is left untouched), so two
    calls give the same model. For tests.
    """
    import torch
    from transformers import BertTokenizerFast, ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), *TINY_VOCABULARY]
    # A vocab.txt read back by from_pretrained builds the tokenizer the same way in transformers 4 and 5.
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(folder, model_max_length=64)
    # Without fusion, spec_size 64 with 16 mel bands: the 101 frames are resized to a 256 x 16 image folded
    # into 64 x 64. With fusion, the extractor needs 64 bands (it resizes to 64 itself), so 51 frames of
    # 64 bands are resized to 64 x 64. Either way 4 x 4 patches and windows of 4 cover it in two stages.
    mel_bands = 64 if fusion else 16
    extractor = ClapFeatureExtractor(
        feature_size=mel_bands,
        sampling_rate=16_000,
        hop_length=320 if fusion else 160,
        max_length_s=1,
        fft_window_size=512,
        frequency_max=8_000,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=tokenizer.model_max_length + tokenizer.pad_token_id + 1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        ),
        audio_config=dict(
            num_mel_bins=mel_bands,
            spec_size=64,
            enable_fusion=fusion,
            fusion_type="aff_2d" if fusion else None,
            window_size=4,
            patch_embeds_hidden_size=16,
            hidden_size=32,
            depths=[1, 1],
            num_attention_heads=[2, 2],
            num_hidden_layers=2,
        ),
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ClapModel(config)
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return ClapAudioTextModel.from_pretrained(folder, device="cpu")


MUSICCAPS_HEADER = "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,is_audioset_eval\n"


def write_musiccaps(root: Path, rows: list[tuple[str, list[str], str, bool]]) -> Path:
    """Write a small ``musiccaps/musiccaps-public.csv`` under ``root`` from (ytid, aspects, caption, is_eval)."""
    import csv

    path = root / "musiccaps" / "musiccaps-public.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MUSICCAPS_HEADER.strip().split(","))
        for ytid, aspects, caption, is_eval in rows:
            w.writerow([ytid, 0, 10, "/m/0", repr(aspects), caption, 1, False, is_eval])
    return path
