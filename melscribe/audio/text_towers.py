"""The text towers of joint audio–text models as scorers: the paper's CLAP_text and TTMR_text rows.

Both the request and the descriptor set go through the model's *text* encoder; the score is the cosine of
the two embeddings (as in Epure et al., NLP4MusA 2024: CLAP_text 36.5 and TTMR_text 19.9 Recall@10 on MC).

* ``clap:NAME_OR_FOLDER``: a transformers ``ClapModel`` checkpoint (default :data:`~melscribe.config.DEFAULT_CLAP`,
  ``laion/larger_clap_music``), through :class:`melscribe.audio.clap.ClapAudioTextModel`.
* ``clap:FILE.pt[@TOKENIZER]``: a checkpoint of LAION-CLAP's own code (e.g. ``music_audioset_epoch_15_esc_90.14.pt``),
  whose state dict is mapped onto a transformers ``ClapModel`` by :func:`laion_clap_to_transformers` (config read
  off the tensor shapes). The file holds no tokenizer: RoBERTa's (``vocab.json`` + ``merges.txt``) is taken from
  ``@TOKENIZER``, ``$MELSCRIBE_CLAP_TOKENIZER``, the file's folder, or the local Hugging Face cache
  (``laion/larger_clap_music``, ``roberta-base``).
* ``ttmr:CHECKPOINT[@TOKENIZER]``: TTMR (Doh et al., ICASSP 2023; BERT text encoder) or TTMR++ (Doh et al., ICASSP
  2024; RoBERTa), a ``.pth`` whose ``state_dict`` holds ``text_encoder.*`` (a transformers BERT/RoBERTa) and
  ``text_projector`` (LayerNorm + bias-free Linear on the first token). Loaded on the CPU (the authors' code maps
  it to CUDA); ``hparams.yaml`` beside it, when present, names the backbone and ``max_length``. Tokenizer: as for
  CLAP (``$MELSCRIBE_TTMR_TOKENIZER``), and for BERT's uncased vocabulary the packaged all-MiniLM-L6-v2, which
  uses the same WordPiece vocabulary.

A checkpoint that cannot be used here raises :class:`~melscribe.retrieval.scorers.ModelUnavailableError` with a one-line
reason, so the baselines table skips its row. Checkpoints are read with ``torch.load(weights_only=True)``; a
file that also pickles Python objects is refused unless ``MELSCRIBE_TRUST_CHECKPOINTS=1``.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from melscribe.config import DEFAULT_CLAP
from melscribe.errors import ModelUnavailableError

CLAP_TOKENIZER_ENV = "MELSCRIBE_CLAP_TOKENIZER"
TTMR_TOKENIZER_ENV = "MELSCRIBE_TTMR_TOKENIZER"
TRUST_ENV = "MELSCRIBE_TRUST_CHECKPOINTS"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


class TextTowerScorer:
    """Cosine similarity of a text encoder's L2-normalised embeddings; embeddings cached by text, so re-fitting
    on the corpus of another seed only encodes new descriptor sets."""

    def __init__(self, embed_text: Callable[[list[str]], np.ndarray], name: str, batch_size: int = 256):
        self.embed_text, self.name, self.batch_size = embed_text, name, batch_size
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
            todo.sort(key=len)  # similar lengths batch together
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                for t, v in zip(chunk, np.asarray(self.embed_text(chunk), dtype=np.float32)):
                    self._cache[t] = v / max(float(np.linalg.norm(v)), 1e-12)
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def fit(self, corpus: Sequence[str]) -> "TextTowerScorer":
        self.doc_matrix = self.embed(list(corpus))
        return self

    def score(self, queries: Sequence[str]) -> np.ndarray:
        return (self.embed(list(queries)) @ self.doc_matrix.T).astype(np.float32)


def _split_spec(rest: str) -> tuple[str, str | None]:
    """``PATH@TOKENIZER`` → (PATH, TOKENIZER); a plain name or path → (it, None)."""
    path, sep, tok = rest.rpartition("@")
    return (path, tok) if sep and path else (rest, None)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def load_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a checkpoint file, on the CPU: its ``state_dict`` (or ``model``) entry if it has one,
    with DistributedDataParallel's ``module.`` prefix removed."""
    import pickle

    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelUnavailableError(f"no checkpoint file {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if not found:  # not a pickle torch can read at all
            raise ModelUnavailableError(f"cannot read checkpoint {path}: not a torch checkpoint") from None
        if os.environ.get(TRUST_ENV) != "1":
            raise ModelUnavailableError(
                f"{path} pickles Python objects besides tensors ({found.group(1)}); if you trust the file, "
                f"set {TRUST_ENV}=1") from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ModelUnavailableError(f"cannot read checkpoint {path}: {_one_line(e)}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ModelUnavailableError(f"{path} holds no state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()
            if isinstance(v, torch.Tensor)}


def _load_tokenizer(candidates: Sequence[str | os.PathLike | None], what: str, env: str, model_file: Path):
    """The first tokenizer that loads offline from ``candidates`` (folders or hub names, local cache only)."""
    from transformers import AutoTokenizer

    tried = []
    for cand in candidates:
        if not cand:
            continue
        p = Path(cand).expanduser()
        if p.is_dir() and not any((p / f).is_file() for f in ("tokenizer.json", "vocab.json", "vocab.txt",
                                                                "tokenizer_config.json")):
            continue
        try:
            return AutoTokenizer.from_pretrained(str(p) if p.is_dir() else str(cand), local_files_only=True)
        except Exception:  # not cached, not a tokenizer folder
            tried.append(str(cand))
    raise ModelUnavailableError(
        f"{model_file.name} needs the {what} tokenizer: pass SPEC@TOKENIZER_FOLDER, set ${env}, or put its files "
        f"beside the checkpoint (tried {', '.join(tried) or 'nothing'})")


# ---- CLAP ---------------------------------------------------------------------------------------------------

def load_clap(name_or_path: str | os.PathLike = DEFAULT_CLAP, tokenizer: str | None = None, device: str | None = None):
    """A :class:`~melscribe.audio.clap.ClapAudioTextModel` from a transformers checkpoint (hub name, cached or
    reachable, or folder) or from a LAION-CLAP ``.pt`` file; :class:`ModelUnavailableError` if it cannot load."""
    from melscribe.errors import DataError
    from melscribe.audio.clap import ClapAudioTextModel

    p = Path(str(name_or_path)).expanduser()
    if p.suffix in CHECKPOINT_SUFFIXES:
        return load_laion_clap(p, tokenizer=tokenizer, device=device)
    try:
        return ClapAudioTextModel.from_pretrained(str(name_or_path), device=device or _device())
    except Exception as e:  # DataError (wrapping OSError), hub errors, broken configs
        cause = e.__cause__ if isinstance(e, DataError) and e.__cause__ else e
        raise ModelUnavailableError(f"cannot load CLAP {str(name_or_path)!r} offline: {_one_line(cause)}") from None


#: LAION-CLAP name fragments → transformers ``ClapModel`` ones, applied in order.
_CLAP_RENAMES = (
    (r"^text_branch\.", "text_model."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.bn0\.", ".batch_norm."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.attn\.", ".attention.self."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    (r"^(text|audio)_projection\.0\.", r"\1_projection.linear1."),
    (r"^(text|audio)_projection\.2\.", r"\1_projection.linear2."),
)
#: LAION-CLAP tensors with no counterpart in ``ClapModel`` (STFT/mel filters are computed by the processor;
#: shifted-window masks are rebuilt at run time; the *_transform heads only served training).
_CLAP_DROPPED = re.compile(r"(spectrogram_extractor|logmel_extractor|\.attn_mask$|^(text|audio)_transform\.|"
                           r"position_ids$)")


def laion_clap_to_transformers(state_dict: dict) -> dict:
    """Rename (and split the fused ``qkv`` of) a LAION-CLAP state dict into transformers ``ClapModel`` names."""
    out = {}
    for key, value in state_dict.items():
        if _CLAP_DROPPED.search(key):
            continue
        new = key
        for pattern, repl in _CLAP_RENAMES:
            new = re.sub(pattern, repl, new)
        if ".attention.self.qkv." in new:
            q, k, v = value.chunk(3, dim=0)
            for part, t in (("query", q), ("key", k), ("value", v)):
                out[new.replace(".qkv.", f".{part}.")] = t
        else:
            out[new] = value
    return out


def clap_config_from_state_dict(sd: dict, pad_token_id: int = 1):
    """A ``ClapConfig`` matching a LAION-CLAP state dict (HTSAT audio, RoBERTa text), read off tensor shapes."""
    from transformers import ClapConfig

    def shape(key):
        if key not in sd:
            raise ModelUnavailableError(f"not a LAION-CLAP checkpoint with a RoBERTa text branch and an HTSAT "
                                        f"audio branch: no tensor {key}")
        return tuple(sd[key].shape)

    vocab, hidden = shape("text_branch.embeddings.word_embeddings.weight")
    text_layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"text_branch\.encoder\.layer\.(\d+)\.", k)))
    text_config = dict(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=text_layers, num_attention_heads=max(1, hidden // 64),
        intermediate_size=shape("text_branch.encoder.layer.0.intermediate.dense.weight")[0],
        max_position_embeddings=shape("text_branch.embeddings.position_embeddings.weight")[0],
        type_vocab_size=shape("text_branch.embeddings.token_type_embeddings.weight")[0],
        pad_token_id=pad_token_id, bos_token_id=0, eos_token_id=2)
    blocks: dict[int, set[int]] = {}
    heads: dict[int, int] = {}
    window = None
    for k, v in sd.items():
        m = re.match(r"audio_branch\.layers\.(\d+)\.blocks\.(\d+)\.", k)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
            if k.endswith("attn.relative_position_bias_table"):
                heads[int(m.group(1))] = int(v.shape[1])
                window = int(round((v.shape[0] ** 0.5 + 1) / 2))
    n_stages = len(blocks)
    if not n_stages or window is None:
        raise ModelUnavailableError("not a LAION-CLAP checkpoint: no HTSAT audio blocks (audio_branch.layers.*)")
    embed, _, patch, _ = shape("audio_branch.patch_embed.proj.weight")
    spec_size = 256
    mask = sd.get("audio_branch.layers.0.blocks.1.attn_mask")
    if mask is not None:  # (windows, w*w, w*w) over the (spec/patch)^2 grid of the first stage
        spec_size = int(round(patch * window * mask.shape[0] ** 0.5))
    audio_config = dict(
        num_mel_bins=shape("audio_branch.bn0.weight")[0], spec_size=spec_size, patch_size=patch,
        patch_stride=[patch, patch], window_size=window, patch_embeds_hidden_size=embed,
        depths=[len(blocks[i]) for i in range(n_stages)], num_attention_heads=[heads[i] for i in range(n_stages)],
        hidden_size=shape("audio_projection.0.weight")[1], num_hidden_layers=n_stages,
        enable_fusion=any("fusion_model" in k or "mel_conv2d" in k for k in sd),
        fusion_type="aff_2d" if any("fusion_model" in k for k in sd) else None)
    return ClapConfig(text_config=text_config, audio_config=audio_config,
                      projection_dim=shape("text_projection.2.weight")[0])


def load_laion_clap(path: str | os.PathLike, tokenizer: str | None = None, device: str | None = None):
    """A LAION-CLAP ``.pt`` as a :class:`~melscribe.audio.clap.ClapAudioTextModel` (transformers ``ClapModel``).

    Every text-tower tensor must map; audio tensors that do not are reported in the model's
    ``conversion_notes`` (the text scorer does not need them)."""
    import torch
    from transformers import ClapFeatureExtractor, ClapModel, ClapProcessor

    from melscribe.audio.clap import ClapAudioTextModel

    path = Path(path).expanduser()
    sd = load_state_dict(path)
    clap_config_from_state_dict(sd)  # a clear error for files of another layout, before looking for a tokenizer
    tok = _load_tokenizer([tokenizer, os.environ.get(CLAP_TOKENIZER_ENV), path.parent, DEFAULT_CLAP, "roberta-base"],
                          "RoBERTa", CLAP_TOKENIZER_ENV, path)
    config = clap_config_from_state_dict(sd, pad_token_id=tok.pad_token_id)  # RoBERTa positions count from it
    with torch.random.fork_rng(devices=[]):  # audio tensors the file lacks stay random; seeded, globally harmless
        torch.manual_seed(0)
        model = ClapModel(config)
    converted = laion_clap_to_transformers(sd)
    expected = model.state_dict()
    bad = [k for k, v in converted.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if bad:
        raise ModelUnavailableError(f"{path.name}: {len(bad)} tensors do not fit ClapModel, e.g. {bad[0]}")
    result = model.load_state_dict({k: v for k, v in converted.items() if k in expected}, strict=False)
    missing_text = [k for k in result.missing_keys if k.startswith(("text_model.", "text_projection."))
                    and not k.endswith("position_ids")]  # an arange the model builds itself
    if missing_text:
        raise ModelUnavailableError(f"{path.name}: the text tower lacks {len(missing_text)} tensors, e.g. "
                                    f"{missing_text[0]}")
    extractor = ClapFeatureExtractor(feature_size=config.audio_config.num_mel_bins,
                                     truncation="fusion" if config.audio_config.enable_fusion else "rand_trunc")
    wrapper = ClapAudioTextModel(model.to(device or _device()), ClapProcessor(feature_extractor=extractor, tokenizer=tok),
                                 name=str(path.resolve()))
    missing_audio = [k for k in result.missing_keys if k.startswith("audio_")]
    wrapper.conversion_notes = (f"{len(missing_audio)} audio tensors not in the file (random): e.g. {missing_audio[0]}"
                                if missing_audio else "")
    return wrapper


def clap_scorer(name_or_path: str = DEFAULT_CLAP, name: str | None = None) -> TextTowerScorer:
    """``clap:NAME_OR_FOLDER`` or ``clap:FILE.pt[@TOKENIZER]`` as a scorer (CLAP_text)."""
    path, tok = _split_spec(name_or_path or DEFAULT_CLAP)
    model = load_clap(path, tokenizer=tok)
    return TextTowerScorer(model.embed_text, name or f"CLAP_text ({path})")


# ---- TTMR / TTMR++ ------------------------------------------------------------------------------------------

class TtmrTextEncoder:
    """The text side of TTMR / TTMR++: a BERT/RoBERTa encoder, its first token, LayerNorm and a bias-free
    projection, L2-normalised."""

    def __init__(self, encoder, projector, tokenizer, max_length: int = 128, batch_size: int = 64, name: str = "ttmr"):
        self.encoder, self.projector, self.tokenizer = encoder.eval(), projector.eval(), tokenizer
        self.max_length, self.batch_size, self.name = max_length, batch_size, name

    def embed_text(self, texts: list[str]) -> np.ndarray:
        import torch

        device = next(self.encoder.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[start:start + self.batch_size]), padding="longest", truncation=True,
                                        max_length=self.max_length, return_tensors="pt")
                hidden = self.encoder(input_ids=tokens["input_ids"].to(device),
                                      attention_mask=tokens["attention_mask"].to(device)).last_hidden_state[:, 0, :]
                z = self.projector(hidden).float()
                out.append(torch.nn.functional.normalize(z, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def _read_hparams(folder: Path) -> dict:
    for name in ("hparams.yaml", "hparams.yml", "config.yaml"):
        f = folder / name
        if f.is_file():
            import yaml

            try:
                data = yaml.safe_load(f.read_text())
            except yaml.YAMLError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def load_ttmr(path: str | os.PathLike, tokenizer: str | None = None, device: str | None = None) -> TtmrTextEncoder:
    """The text tower of a TTMR or TTMR++ checkpoint (see the module docstring), on the CPU unless CUDA is there."""
    import torch
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    path = Path(path).expanduser()
    if path.is_dir():
        found = [path / n for n in ("best.pth", "last.pth", "model.pth") if (path / n).is_file()]
        if not found:
            raise ModelUnavailableError(f"no best.pth/last.pth in {path}")
        path = found[0]
    sd = load_state_dict(path)
    text = {k[len("text_encoder."):]: v for k, v in sd.items() if k.startswith("text_encoder.")}
    if "embeddings.word_embeddings.weight" not in text or "text_projector.1.weight" not in sd:
        raise ModelUnavailableError(f"{path.name} is not a TTMR checkpoint: no text_encoder.* / text_projector.* "
                                    "with a BERT-style text encoder")
    hp = _read_hparams(path.parent)
    backbone = str(hp.get("text_backbone") or hp.get("text_arch") or "")
    vocab, hidden = text["embeddings.word_embeddings.weight"].shape
    type_vocab = text["embeddings.token_type_embeddings.weight"].shape[0]
    is_roberta = "roberta" in backbone.lower() or (not backbone and (type_vocab == 1 or vocab == 50265))
    backbone = backbone or ("roberta-base" if is_roberta else "bert-base-uncased")
    layers = 1 + max(int(k.split(".")[2]) for k in text if k.startswith("encoder.layer."))
    common = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=int(hp.get("text_heads") or max(1, hidden // 64)),
                  intermediate_size=text["encoder.layer.0.intermediate.dense.weight"].shape[0],
                  max_position_embeddings=text["embeddings.position_embeddings.weight"].shape[0],
                  type_vocab_size=type_vocab)
    candidates = [tokenizer, os.environ.get(TTMR_TOKENIZER_ENV), path.parent, backbone]
    if not is_roberta and vocab == 30522:
        from melscribe.config import resolve_model

        candidates.append(resolve_model("all-MiniLM-L6-v2"))  # bert-base-uncased's WordPiece vocabulary
    tok = _load_tokenizer(candidates, f"{backbone}", TTMR_TOKENIZER_ENV, path)
    if len(tok) != vocab:
        raise ModelUnavailableError(f"{path.name}: the tokenizer has {len(tok)} tokens, the encoder {vocab}")
    if is_roberta:  # RoBERTa counts positions from the padding id: take it from the tokenizer (1 for roberta-base)
        encoder = RobertaModel(RobertaConfig(pad_token_id=tok.pad_token_id, **common), add_pooling_layer=False)
    else:
        encoder = BertModel(BertConfig(pad_token_id=tok.pad_token_id, **common), add_pooling_layer=False)
    text = {k: v for k, v in text.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
    result = encoder.load_state_dict(text, strict=False)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        raise ModelUnavailableError(f"{path.name}: the text encoder does not match a {backbone} layout ({bad})")
    dim = sd["text_projector.1.weight"].shape[0]
    projector = torch.nn.Sequential(torch.nn.LayerNorm(hidden), torch.nn.Linear(hidden, dim, bias=False))
    projector.load_state_dict({k[len("text_projector."):]: v for k, v in sd.items() if k.startswith("text_projector.")})
    dev = device or _device()
    return TtmrTextEncoder(encoder.to(dev), projector.to(dev), tok, max_length=int(hp.get("max_length") or 128),
                           name=str(path.resolve()))


def ttmr_scorer(path: str, name: str | None = None) -> TextTowerScorer:
    """``ttmr:CHECKPOINT[@TOKENIZER]`` as a scorer (TTMR_text)."""
    if not path:
        raise ModelUnavailableError("no TTMR checkpoint given: use ttmr:PATH/best.pth (experiments/tables.py: "
                                    "--ttmr PATH or $MELSCRIBE_TTMR)")
    ckpt, tok = _split_spec(path)
    model = load_ttmr(ckpt, tokenizer=tok)
    return TextTowerScorer(model.embed_text, name or f"TTMR_text ({ckpt})")
