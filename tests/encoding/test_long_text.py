"""Texts longer than the encoder's window are read whole (melscribe/encoding/long_text.py,
``TextEncoder.encode_whole``): pieces that fit and cover the text, short texts untouched bit for bit, the end of
a long text read, torch and ONNX alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melscribe.encoding.encoder import TextEncoder
from melscribe.encoding.long_text import DEFAULT_POLICY, LongTextPolicy, Window, pool
from melscribe.errors import InvalidRequestError

#: Three sentences of chatter naming no music (53 tokens).
CHATTER3 = ("I have been using this app for a couple of weeks now and I mostly like it. "
           "My sister told me to ask here because she found a lot of good stuff this way. "
           "I work long shifts at the hospital and the commute home takes almost an hour. ")
#: 15 sentences of chatter (265 tokens): twice that, then what is wanted, is :data:`LONG`.
CHATTER = CHATTER3 * 5
ENDING = "What I want is upbeat tropical calypso with steel drums, and nothing with vocals."
LONG = CHATTER * 2 + ENDING
SHORT = ["upbeat tropical music with steel drums", "x", "  Sad PIANO ballad; soft female vocal!  ",
         "ÉLECTRO française, café-concert, 90s", "🎸 guitar"]
POLICIES = [LongTextPolicy("tokens", 32, "mean"), LongTextPolicy("tokens", 0, "tokens"),
            LongTextPolicy("sentences", 0, "mean"), LongTextPolicy("each-sentence", 0, "relevance", 0.05),
            DEFAULT_POLICY]
#: Descriptor sets standing for a catalog: a piece's relevance is its best cosine to one of them.
CATALOG = ["steel drums, tropical, upbeat, calypso", "sad, piano, ballad", "heavy metal, distorted guitar",
           "jazz, saxophone, lounge", "ambient, calm, synth pad"]


@pytest.fixture(scope="module")
def onnx_encoder(home: Path) -> TextEncoder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        return TextEncoder("all-MiniLM-L6-v2", backend="onnx")


def relevance_for(encoder: TextEncoder):
    docs = encoder.encode(CATALOG)
    return lambda pieces: (pieces @ docs.T).max(axis=1)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label)
def test_pieces_fit_cover_the_text_and_keep_its_tokens(encoder: TextEncoder, policy: LongTextPolicy) -> None:
    text = LONG + " " + "supercalifragilisticexpialidocious " * 3 + "a-b-c/d " * 60  # words cut into many tokens
    assert encoder.token_count(text) > 2 * encoder.max_seq_length
    pieces = encoder.windows(text, policy)
    assert pieces and all(isinstance(w, Window) for w in pieces) and len(pieces) >= 3
    tokenizer = encoder._impl.window_tokenizer
    whole = tokenizer.encode(text, add_special_tokens=False)
    covered = set()
    for w in pieces:
        piece = text[w.start:w.end]
        assert encoder.token_count(piece) == w.tokens + 2 <= encoder.max_seq_length  # nothing of a piece is cut
        ids = tokenizer.encode(piece, add_special_tokens=False).ids
        first = next(i for i, (a, _) in enumerate(whole.offsets) if a >= w.start)
        assert ids == whole.ids[first:first + len(ids)]  # cut at word boundaries: the very tokens of the text
        covered.update(range(first, first + len(ids)))
    assert covered == set(range(len(whole.ids)))
    starts = [w.start for w in pieces]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    if (policy.split != "tokens" or policy.overlap == 0) and not policy.first_window:  # every token read once
        assert sum(w.tokens for w in pieces) == len(whole.ids)
    if policy.first_window:  # the first piece is what truncation reads, token for token
        assert pieces[0].start == 0 and pieces[0].tokens == encoder.max_seq_length - 2
        assert all(w.end > pieces[0].end for w in pieces[1:])


def test_each_sentence_is_a_piece_of_its_own(encoder: TextEncoder) -> None:
    pieces = encoder.windows(LONG, LongTextPolicy("each-sentence", 0, "mean"))
    texts = [LONG[w.start:w.end] for w in pieces]
    assert texts[-1] == ENDING and len(texts) == 31
    assert encoder.windows(LONG, LongTextPolicy("sentences", 0, "mean"))[-1].tokens > len(ENDING.split())


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_short_texts_embed_bit_for_bit_as_before(backend: str, encoder: TextEncoder, onnx_encoder: TextEncoder) -> None:
    enc = encoder if backend == "torch" else onnx_encoder
    assert all(enc.windows(t) is None for t in SHORT)
    assert enc.windows("steel drums " * 127) is None and enc.windows("steel drums " * 128) is not None  # 254 + 2 fit
    for texts in (SHORT[:1], SHORT, SHORT * 3):
        assert np.array_equal(enc.encode_whole(texts, relevance=relevance_for(enc)), enc.encode(texts))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_end_of_a_long_text_is_read(backend: str, encoder: TextEncoder, onnx_encoder: TextEncoder) -> None:
    enc = encoder if backend == "torch" else onnx_encoder
    assert enc.token_count(CHATTER * 2) > enc.max_seq_length  # truncation never sees the ending
    truncated = enc.encode([LONG])[0]
    ending, chatter, calypso = enc.encode([ENDING, CHATTER, CATALOG[0]])
    assert truncated @ chatter > 0.99  # what truncation reads: the chatter alone
    whole = enc.encode_whole([LONG], relevance=relevance_for(enc))[0]
    assert abs(float(np.linalg.norm(whole)) - 1) < 1e-5
    assert whole @ ending > 0.8 > truncated @ ending + 0.6
    assert whole @ calypso > truncated @ calypso + 0.4
    # without relevance scores every piece weighs alike: the ending moves it, but less
    mean = enc.encode_whole([LONG], policy=LongTextPolicy("each-sentence", 0, "mean"))[0]
    assert truncated @ ending + 0.05 < mean @ ending < whole @ ending


def test_torch_and_onnx_read_long_texts_alike(encoder: TextEncoder, onnx_encoder: TextEncoder) -> None:
    texts = [LONG, SHORT[0], CHATTER * 3, LONG.upper()]
    for policy in POLICIES:
        a = encoder.encode_whole(texts, policy=policy, relevance=relevance_for(encoder))
        b = onnx_encoder.encode_whole(texts, policy=policy, relevance=relevance_for(onnx_encoder))
        assert (a * b).sum(axis=1).min() >= 1 - 1e-4, policy.label
        assert [len(encoder.windows(t, policy) or []) for t in texts] == \
               [len(onnx_encoder.windows(t, policy) or []) for t in texts]


def test_a_long_text_in_a_batch_embeds_as_alone(encoder: TextEncoder) -> None:
    rel = relevance_for(encoder)
    texts = [SHORT[0], LONG, SHORT[2], CHATTER * 3 + "calm piano"]
    batch = encoder.encode_whole(texts, relevance=rel)
    alone = np.vstack([encoder.encode_whole([t], relevance=rel) for t in texts])
    assert np.abs(batch - alone).max() < 1e-5


def test_pooling() -> None:
    emb = np.eye(3, dtype=np.float32)
    wins = [Window(0, 1, 1), Window(1, 2, 1), Window(2, 3, 2)]
    np.testing.assert_allclose(pool(emb, wins, "mean"), np.full(3, 3 ** -0.5), rtol=1e-6)
    np.testing.assert_allclose(pool(emb, wins, "tokens"), np.array([1, 1, 2]) / 6 ** 0.5, rtol=1e-6)
    rel = np.array([0.2, 0.5, 0.3])
    np.testing.assert_array_equal(pool(emb, wins, "relevance", rel, 0.0), [0, 1, 0])
    sharp, soft = pool(emb, wins, "relevance", rel, 0.05), pool(emb, wins, "relevance", rel, 1.0)
    assert sharp[1] > soft[1] > soft[2] > soft[0] and np.argmax(sharp) == 1
    np.testing.assert_allclose(pool(emb, wins, "relevance", None), pool(emb, wins, "mean"))  # no scores: the mean
    # above-first: the first piece, and the later ones more relevant than it, by tokens × exp(gain / T)
    np.testing.assert_array_equal(pool(emb, wins, "above-first", np.array([0.5, 0.2, 0.4]), 0.1), [1, 0, 0])
    np.testing.assert_allclose(pool(emb, wins, "above-first", np.array([0.2, 0.5, 0.1]), 0.1),
                               np.array([1, np.exp(3), 0]) / np.sqrt(1 + np.exp(6)), rtol=1e-5)
    np.testing.assert_allclose(pool(emb, wins, "above-first", None), pool(emb, wins, "tokens"))  # no scores
    np.testing.assert_array_equal(pool(emb, wins, "above-first", rel, 0.0), [0, 1, 0])
    with pytest.raises(ValueError, match="pooling"):
        pool(emb, wins, "max")
    for bad in (dict(split="words"), dict(pooling="max"), dict(overlap=-1), dict(temperature=-0.1)):
        with pytest.raises(ValueError):
            LongTextPolicy(**bad)


def test_the_window_can_be_set_within_the_models_positions(minilm, onnx_encoder: TextEncoder, home: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        short = TextEncoder("all-MiniLM-L6-v2", backend="onnx", max_seq_length=96)
        wide = TextEncoder("all-MiniLM-L6-v2", backend="torch", max_seq_length=512)
        with pytest.raises(InvalidRequestError, match="between 3 and 512"):
            TextEncoder("all-MiniLM-L6-v2", backend="onnx", max_seq_length=513)
    with pytest.raises(InvalidRequestError, match="passed in"):
        TextEncoder(minilm, max_seq_length=96)
    assert short.max_seq_length == 96 and wide.max_seq_length == 512 and minilm.max_seq_length == 256
    text = CHATTER3 * 2 + ENDING  # 126 tokens: over 96, under 256
    assert short.windows(text) is not None and onnx_encoder.windows(text) is None
    assert short.encode([text])[0] @ short.encode([CHATTER3 * 2])[0] > 0.99  # truncated at 96 tokens
    assert short.encode_whole([text], relevance=relevance_for(short))[0] @ short.encode([ENDING])[0] > 0.8
    # a window longer than the text reads what the model's own reads
    assert wide.encode([text])[0] @ onnx_encoder.encode([text])[0] > 1 - 1e-4


def test_a_request_whose_end_adds_nothing_embeds_as_truncated(onnx_encoder: TextEncoder, home: Path) -> None:
    """The default reads the first window as truncation did; later sentences count only when they resemble the
    catalog more than it does, so a request a little over the window whose end is chatter keeps truncation's
    embedding, and one whose end names what is wanted moves towards it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MELSCRIBE_HOME", str(home))
        short = TextEncoder("all-MiniLM-L6-v2", backend="onnx", max_seq_length=96)
    rel = relevance_for(short)
    wanted = "Upbeat tropical calypso with steel drums and a happy summer feeling. " * 6
    chatty_end = wanted + CHATTER3
    assert short.windows(chatty_end) is not None and short.windows(chatty_end)[0].start == 0
    whole, truncated = short.encode_whole([chatty_end], relevance=rel)[0], short.encode([chatty_end])[0]
    assert whole @ truncated > 1 - 1e-5
    telling_end = CHATTER3 * 2 + ENDING
    whole = short.encode_whole([telling_end], relevance=rel)[0]
    assert whole @ short.encode([ENDING])[0] > 0.8 > short.encode([telling_end])[0] @ short.encode([ENDING])[0]
