"""CLAP_text and TTMR_text scorers (melscribe.audio.text_towers) on tiny random-weight models written in the tests:
a transformers CLAP folder, a LAION-CLAP-layout ``.pt``, TTMR (BERT) and TTMR++ (RoBERTa) checkpoints."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from melscribe.retrieval.scorers import ModelUnavailableError, make_scorer  # noqa: E402
from melscribe.audio.text_towers import (  # noqa: E402
    TRUST_ENV,
    clap_config_from_state_dict,
    laion_clap_to_transformers,
    load_laion_clap,
    load_ttmr,
)

WORDS = ("calm piano sad ballad upbeat tropical steel drums rock guitar jazz saxophone female male vocal "
         "low quality fast slow i m looking for music with a the and some").split()
QUERIES = ["i'm looking for calm piano music", "upbeat tropical steel drums", "fast rock with a male vocal"]
DOCS = ["calm, piano, sad", "steel drums, tropical, upbeat", "rock, guitar, fast, male vocal", "jazz, saxophone"]


def tiny_tokenizer(folder: Path):
    """A WordPiece tokenizer over WORDS plus single characters, saved to ``folder``."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789',."
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *WORDS]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(tokens)) + "\n")
    tok = BertTokenizerFast.from_pretrained(folder, model_max_length=64)
    tok.save_pretrained(folder)
    return tok


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


# ---- TTMR / TTMR++ -----------------------------------------------------------------------------------------

def write_ttmr(folder: Path, roberta: bool = False, tokenizer_beside: bool = True, vocab_size: int | None = None,
               extra: dict | None = None):
    """A TTMR-layout checkpoint: DDP ``module.`` prefix, audio tensors, text_encoder.*, text_projector.*."""
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    tok = tiny_tokenizer(folder / "tok")
    common = dict(vocab_size=vocab_size or len(tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=66 if roberta else 64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        if roberta:  # TTMR++: the pooler's dense layer is replaced by Identity, so it has no tensors
            encoder = RobertaModel(RobertaConfig(type_vocab_size=1, pad_token_id=0, **common), add_pooling_layer=False)
        else:
            encoder = BertModel(BertConfig(**common))  # with its pooler, as AutoModel builds it
        projector = torch.nn.Sequential(torch.nn.LayerNorm(128), torch.nn.Linear(128, 16, bias=False))
        torch.nn.init.normal_(projector[0].weight, 1.0, 0.1)
    sd = {f"module.text_encoder.{k}": v for k, v in encoder.state_dict().items()}
    sd.update({f"module.text_projector.{k}": v for k, v in projector.state_dict().items()})
    sd["module.audio_projector.1.weight"] = torch.randn(16, 8)
    sd["module.logit_scale"] = torch.tensor([2.0])
    obj = {"epoch": 7, "state_dict": sd, **(extra or {})}
    path = folder / "best.pth"
    torch.save(obj, path)
    (folder / "hparams.yaml").write_text(
        f"text_{'arch' if roberta else 'backbone'}: {'roberta-base' if roberta else 'bert-base-uncased'}\n"
        "max_length: 32\nmlp_dim: 16\n")
    if tokenizer_beside:
        tok.save_pretrained(folder)
    return path, encoder.eval(), projector.eval(), tok


def reference_ttmr(encoder, projector, tok, texts):
    with torch.no_grad():
        t = tok(texts, padding="longest", truncation=True, max_length=32, return_tensors="pt")
        h = encoder(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).last_hidden_state[:, 0, :]
        return torch.nn.functional.normalize(projector(h), dim=-1).numpy()


def test_ttmr_bert_checkpoint_loads_on_cpu_and_scores(tmp_path):
    path, encoder, projector, tok = write_ttmr(tmp_path / "ttmr")
    model = load_ttmr(path, device="cpu")
    np.testing.assert_allclose(model.embed_text(QUERIES), reference_ttmr(encoder, projector, tok, QUERIES), atol=1e-5)
    scorer = make_scorer(f"ttmr:{path}").fit(DOCS)
    scores = scorer.score(QUERIES)
    assert scores.dtype == np.float32 and scores.shape == (3, 4)
    ref = cosine(reference_ttmr(encoder, projector, tok, QUERIES), reference_ttmr(encoder, projector, tok, DOCS))
    np.testing.assert_allclose(scores, ref, atol=1e-5)
    assert model.max_length == 32  # from hparams.yaml


def test_ttmr_plus_plus_roberta_with_tokenizer_named_in_the_spec(tmp_path):
    path, encoder, projector, tok = write_ttmr(tmp_path / "ttmrpp", roberta=True, tokenizer_beside=False)
    scorer = make_scorer(f"ttmr:{path}@{tmp_path / 'ttmrpp' / 'tok'}").fit(DOCS)
    ref = cosine(reference_ttmr(encoder, projector, tok, QUERIES), reference_ttmr(encoder, projector, tok, DOCS))
    np.testing.assert_allclose(scorer.score(QUERIES), ref, atol=1e-5)


def test_ttmr_uncased_bert_vocabulary_falls_back_to_the_packaged_minilm_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from melscribe.config import resolve_model

    minilm = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    assert len(minilm) == 30522 and minilm.convert_tokens_to_ids(["[CLS]", "the"]) == [101, 1996]  # bert-base-uncased's
    path, *_ = write_ttmr(tmp_path / "ttmr", tokenizer_beside=False, vocab_size=30522)
    model = load_ttmr(path, device="cpu")
    assert len(model.tokenizer) == 30522 and model.embed_text(["calm piano"]).shape == (1, 16)


def test_ttmr_without_weights_or_tokenizer_is_skipped_with_one_line(tmp_path):
    for spec, pattern in (("ttmr:", "no TTMR checkpoint given"), (f"ttmr:{tmp_path}/none.pth", "no checkpoint file")):
        with pytest.raises(ModelUnavailableError, match=pattern) as e:
            make_scorer(spec)
        assert "\n" not in str(e.value)
    path, *_ = write_ttmr(tmp_path / "pp", roberta=True, tokenizer_beside=False)
    with pytest.raises(ModelUnavailableError, match="needs the roberta-base tokenizer") as e:
        load_ttmr(path)
    assert "\n" not in str(e.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="cannot read checkpoint"):
        load_ttmr(tmp_path / "junk.pth")


def test_checkpoints_pickling_objects_need_explicit_trust(tmp_path, monkeypatch):
    path, *_ = write_ttmr(tmp_path / "t", extra={"args": argparse.Namespace(lr=1e-4)})
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(ModelUnavailableError, match=TRUST_ENV):
        load_ttmr(path)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert load_ttmr(path, device="cpu").embed_text(["jazz"]).shape == (1, 16)


# ---- CLAP ---------------------------------------------------------------------------------------------------

def test_clap_folder_through_the_audio_text_interface(tmp_path):
    from tiny_fixtures import tiny_clap

    model = tiny_clap(tmp_path / "clap")
    scorer = make_scorer(f"clap:{tmp_path / 'clap'}").fit(DOCS)
    np.testing.assert_allclose(scorer.score(QUERIES), model.embed_text(QUERIES) @ model.embed_text(DOCS).T, atol=1e-5)


def test_clap_without_weights_is_skipped_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    for spec in ("clap:laion/larger_clap_music", f"clap:{tmp_path}/music_audioset_epoch_15_esc_90.14.pt"):
        with pytest.raises(ModelUnavailableError) as e:
            make_scorer(spec)
        assert "\n" not in str(e.value)


def tiny_clap_model(tok):
    """A tiny transformers ClapModel whose shapes follow the conventions LAION-CLAP's state dicts are read with
    (64-wide attention heads in the text tower, a shifted second block in the first audio stage)."""
    from transformers import ClapConfig, ClapModel

    config = ClapConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=66, pad_token_id=tok.pad_token_id),
        audio_config=dict(num_mel_bins=16, spec_size=64, window_size=4, patch_embeds_hidden_size=16, hidden_size=32,
                          depths=[2, 1], num_attention_heads=[2, 4], num_hidden_layers=2),
        projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return ClapModel(config).eval()


def to_laion_layout(hf_state: dict, window: int, grid: int) -> dict:
    """The inverse of laion_clap_to_transformers, plus the tensors only LAION-CLAP's files hold."""
    out = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in hf_state.items():
        new = key.replace("text_model.", "text_branch.", 1).replace("audio_model.audio_encoder.", "audio_branch.", 1)
        new = re.sub(r"^(text|audio)_projection\.linear1\.", r"\1_projection.0.", new)
        new = re.sub(r"^(text|audio)_projection\.linear2\.", r"\1_projection.2.", new)
        if new.startswith("audio_branch."):
            for a, b in ((".batch_norm.", ".bn0."), (".layernorm_before.", ".norm1."), (".layernorm_after.", ".norm2."),
                         (".attention.output.dense.", ".attn.proj."), (".intermediate.dense.", ".mlp.fc1."),
                         (".output.dense.", ".mlp.fc2.")):
                new = new.replace(a, b)
            m = re.match(r"(.*)\.attention\.self\.(query|key|value)\.(weight|bias)$", new)
            if m:
                qkv.setdefault(f"{m.group(1)}.attn.qkv.{m.group(3)}", {})[m.group(2)] = value
                continue
            new = new.replace(".attention.self.", ".attn.")
        out[new] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]])
    out["audio_branch.spectrogram_extractor.stft.conv_real.weight"] = torch.randn(5, 1, 8)
    out["audio_branch.logmel_extractor.melW"] = torch.randn(5, 16)
    out["audio_branch.layers.0.blocks.1.attn_mask"] = torch.zeros((grid // window) ** 2, window ** 2, window ** 2)
    out["text_transform.sequential.0.weight"] = torch.randn(16, 16)
    out["text_branch.embeddings.position_ids"] = torch.arange(66)[None]
    return out


def test_laion_clap_checkpoint_maps_onto_transformers_clap(tmp_path):
    tok = tiny_tokenizer(tmp_path / "tok")
    hf = tiny_clap_model(tok)
    laion = to_laion_layout(hf.state_dict(), window=4, grid=64 // 4)
    assert any(".attn.qkv." in k for k in laion) and not any("layernorm" in k for k in laion if "audio" in k)

    config = clap_config_from_state_dict(laion)
    a, b = config.audio_config, hf.config.audio_config
    assert (list(a.depths), list(a.num_attention_heads), a.window_size, a.spec_size, a.num_mel_bins, a.hidden_size,
            a.patch_embeds_hidden_size) == (list(b.depths), list(b.num_attention_heads), b.window_size, b.spec_size,
                                            b.num_mel_bins, b.hidden_size, b.patch_embeds_hidden_size)
    converted = laion_clap_to_transformers(laion)
    assert set(converted) == {k for k in hf.state_dict() if not k.endswith("position_ids")}  # an arange, rebuilt

    path = tmp_path / "ckpt" / "music_audioset_epoch_15_esc_90.14.pt"
    path.parent.mkdir()
    torch.save({"epoch": 15, "name": "music", "state_dict": {f"module.{k}": v for k, v in laion.items()}}, path)
    model = load_laion_clap(path, tokenizer=str(tmp_path / "tok"), device="cpu")
    assert model.conversion_notes == ""
    with torch.no_grad():
        t = tok(QUERIES, padding=True, return_tensors="pt")
        out = hf.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"])
        ref = torch.nn.functional.normalize(out if isinstance(out, torch.Tensor) else out.pooler_output, dim=-1)
    np.testing.assert_allclose(model.embed_text(QUERIES), ref.numpy(), atol=1e-5)
    for name, value in hf.state_dict().items():  # audio tower too
        torch.testing.assert_close(model.model.state_dict()[name], value)

    scorer = make_scorer(f"clap:{path}@{tmp_path / 'tok'}").fit(DOCS)
    assert scorer.score(QUERIES).shape == (3, 4)
    with pytest.raises(ModelUnavailableError, match="RoBERTa tokenizer") as e:  # no tokenizer anywhere
        make_scorer(f"clap:{path}")
    assert "\n" not in str(e.value)


def test_a_file_that_is_not_laion_clap_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ModelUnavailableError, match="not a LAION-CLAP checkpoint"):
        load_laion_clap(path)


def test_baselines_table_lists_clap_and_ttmr_rows(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tables", Path(__file__).resolve().parents[2] / "experiments" / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    rows = tables.table_scorers("baselines", None, None)
    assert rows["CLAP_text"] == "clap:laion/larger_clap_music" and rows["TTMR_text"] == "ttmr:"
    rows = tables.table_scorers("baselines", None, None, clap="x.pt", ttmr="best.pth")
    assert rows["CLAP_text"] == "clap:x.pt" and rows["TTMR_text"] == "ttmr:best.pth"

    from melscribe.evaluation.protocol import format_table

    result = {"rows": {}, "skipped": {"CLAP_text": "cannot load", "TTMR_text": "no TTMR checkpoint given"},
              "splits": ["MC"]}
    table = format_table(result)
    assert "| CLAP_text | skipped | 36.5 |" in table and "| TTMR_text | skipped | 19.9 |" in table
