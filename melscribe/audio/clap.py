"""CLAP (Wu et al., 2023) as a joint audio–text model, over transformers' ``ClapModel`` + ``ClapProcessor``
(default checkpoint :data:`melscribe.config.DEFAULT_CLAP`; any hub name or local folder works). Needs ``torch``
and ``transformers``, imported when used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from melscribe.audio.joint import l2_normalise
from melscribe.config import DEFAULT_CLAP
from melscribe.errors import DataError, InvalidRequestError

if TYPE_CHECKING:
    import torch
    from transformers import ClapModel, ClapProcessor


def _pooled(output: Any) -> torch.Tensor:
    """The embedding tensor from ``get_*_features``: a tensor (transformers 4) or an output's ``pooler_output`` (5)."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClapAudioTextModel:
    """:class:`AudioTextModel` over a transformers ``ClapModel`` and its ``ClapProcessor``."""

    def __init__(self, model: ClapModel, processor: ClapProcessor, name: str, batch_size: int = 8) -> None:
        """Wrap a loaded model (put in eval mode) and processor; ``name`` identifies it in caches."""
        if batch_size < 1:
            raise InvalidRequestError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.batch_size = batch_size
        self.sample_rate: int = int(processor.feature_extractor.sampling_rate)
        text_config = model.config.text_config
        # Position ids are RoBERTa-style: they start after the padding index.
        position_limit = text_config.max_position_embeddings - (text_config.pad_token_id or 0) - 1
        self._max_text_tokens = min(int(processor.tokenizer.model_max_length), position_limit)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = DEFAULT_CLAP, *, batch_size: int = 8, device: str | None = None
    ) -> ClapAudioTextModel:
        """Load a CLAP checkpoint: a hub name (needs the hub or its local cache) or a folder from ``save_pretrained``.

        ``device`` defaults to CUDA when available, else CPU. A checkpoint that cannot be loaded raises
        :class:`~melscribe.errors.DataError`.
        """
        import torch
        from transformers import ClapModel, ClapProcessor

        path = Path(name_or_path).expanduser()
        source = str(path.resolve()) if path.is_dir() else str(name_or_path)
        try:
            model = ClapModel.from_pretrained(source)
            processor = ClapProcessor.from_pretrained(source)
        except OSError as e:
            raise DataError(
                f"cannot load the CLAP checkpoint {source!r}: {e}. Without hub access, pass a local folder "
                "written by save_pretrained"
            ) from e
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, processor, name=source, batch_size=batch_size)

    @property
    def dim(self) -> int:
        """Size of the joint embedding space."""
        return int(self.model.config.projection_dim)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches: ``(n, d)`` float32, L2-normalised."""
        import torch

        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError("embed_text takes a list of strings")
        device = self.model.device
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.processor.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self._max_text_tokens,
                    return_tensors="pt",
                )
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
                )
                out.append(_pooled(features).float().cpu().numpy())
        return l2_normalise(np.concatenate(out))

    def embed_audio(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Embed mono float32 waveforms at :attr:`sample_rate` in batches: ``(n, d)`` float32, L2-normalised."""
        import torch

        clips = []
        for i, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all():
                raise InvalidRequestError(f"waveform {i} is not a non-empty, finite, mono (1-D) array")
            clips.append(w)
        device = self.model.device
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                mels, is_longer = self._audio_features(clips[start : start + self.batch_size])
                features = self.model.get_audio_features(
                    input_features=torch.from_numpy(mels).to(device), is_longer=torch.from_numpy(is_longer).to(device)
                )
                out.append(_pooled(features).float().cpu().numpy())
        return l2_normalise(np.concatenate(out))

    def _audio_features(self, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mel features ``(n, channels, frames, mels)`` and ``is_longer`` ``(n, 1)``, each clip independent of the rest.

        ``ClapFeatureExtractor`` draws from NumPy's global generator (random crop of a long clip, and in
        fusion mode a random clip of the batch flagged as long when none is). Each clip is featurised on
        its own with the generator seeded (its state restored afterwards), and ``is_longer`` is recomputed
        from the clip's length, so that a clip's embedding depends neither on chance nor on its batch.
        """
        extractor = self.processor.feature_extractor
        hop = extractor.hop_length
        mels, is_longer = [], []
        state = np.random.get_state()
        try:
            for clip in clips:
                np.random.seed(0)
                features = extractor(clip, sampling_rate=self.sample_rate, return_tensors="np")
                mels.append(np.asarray(features["input_features"][0], dtype=np.float32))
                is_longer.append([len(clip) // hop > extractor.nb_max_samples // hop])
        finally:
            np.random.set_state(state)
        return np.stack(mels), np.asarray(is_longer, dtype=bool)


