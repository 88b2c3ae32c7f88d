import numpy as np
import pytest

from melscribe.retrieval.scorers import BM25Scorer, DenseScorer, FusedScorer, InvalidRequestError, ModelUnavailableError, TfidfScorer, make_scorer

CORPUS = ["steel drums, tropical, upbeat", "sad, piano, ballad", "heavy metal, distorted guitar", "jazz, saxophone"]
QUERIES = ["upbeat tropical music with steel drums", "a sad piano ballad", "smooth jazz saxophone"]
EXPECTED = [0, 1, 3]


@pytest.mark.parametrize("scorer", [TfidfScorer(), make_scorer("tfidf-bigrams"), BM25Scorer()],
                         ids=["tfidf", "tfidf-bigrams", "bm25"])
def test_lexical_scorers_rank_the_matching_set_first(scorer):
    scores = scorer.fit(CORPUS).score(QUERIES)
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    assert list(scores.argmax(axis=1)) == EXPECTED


def test_word_pairs_tell_a_phrase_from_its_words():
    """Both sets hold the words "piano", "melody" and "guitar"; only the first holds the descriptor "piano melody".
    Unigram TF-IDF scores them alike, the word pairs put the phrase first; one request scored alone (the fast
    path of ``recommend()``) gets the scores of a batch."""
    corpus = ["piano melody, guitar", "piano, guitar melody"]
    plain = TfidfScorer().fit(corpus).score(["a piano melody"])[0]
    assert plain[0] == pytest.approx(plain[1])
    pairs = make_scorer("tfidf-bigrams").fit(corpus)
    scores = pairs.score(["a piano melody", "guitar"])
    assert scores[0, 0] > scores[0, 1]
    assert np.allclose(pairs.score(["a piano melody"])[0], scores[0], atol=1e-6)


def test_bm25_query_without_known_terms_scores_zero():
    assert not BM25Scorer().fit(CORPUS).score(["zzzz qqqq"]).any()


def test_dense_scorer_and_cache(minilm):
    scorer = DenseScorer(minilm, name="minilm")
    scores = scorer.fit(CORPUS).score(QUERIES)
    assert list(scores.argmax(axis=1)) == EXPECTED
    assert np.allclose(np.linalg.norm(scorer.embed(CORPUS), axis=1), 1, atol=1e-5)
    n = len(scorer._cache)
    scorer.fit(CORPUS[:2])
    assert len(scorer._cache) == n


def test_fused_scorer(minilm):
    fused = FusedScorer([TfidfScorer(), DenseScorer(minilm)], method="rrf").fit(CORPUS)
    assert list(fused.score(QUERIES).argmax(axis=1)) == EXPECTED
    with pytest.raises(ValueError, match="unknown fusion"):
        FusedScorer([TfidfScorer()], method="max")


def test_make_scorer_specs_and_unavailable_model(tmp_path):
    assert make_scorer("tfidf").name == "TF-IDF"
    assert isinstance(make_scorer("rrf:tfidf+bm25"), FusedScorer)
    w = make_scorer("weighted:1*tfidf+0.5*bm25")
    assert w.weights == [1.0, 0.5]
    with pytest.raises(InvalidRequestError, match="unknown scorer"):  # a typo is an error, not a skip
        make_scorer("nonsense-model")
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        make_scorer(f"dense:{tmp_path}/not-a-model")


def test_lexical_scores_of_some_rows_equal_the_full_scores():
    rows = np.array([2, 0])
    for scorer in (TfidfScorer().fit(CORPUS), BM25Scorer().fit(CORPUS)):
        full = scorer.score([QUERIES[0]])[0]
        assert np.allclose(scorer.score_rows(QUERIES[0], rows), full[rows])


@pytest.mark.parametrize("kwargs", [{}, {"sublinear_tf": True, "ngram_range": (1, 2)}, {"binary": True, "norm": "l1"},
                                    {"use_idf": False, "norm": None, "stop_words": "english"}],
                         ids=["default", "sublinear-bigrams", "binary-l1", "no-idf-no-norm"])
def test_one_request_is_weighted_as_the_vectorizer_transforms_it(kwargs):
    scorer = TfidfScorer(**kwargs).fit(CORPUS + ["Sad sad SAD piano, slow piano", "the and of"])
    texts = QUERIES + ["sad sad piano piano piano with the drums", "ÜBER-Metal!! metal", "nothing known here", ""]
    for text in texts:
        terms, weights = scorer.query_vector(text)
        expected = scorer.vectorizer.transform([text]).toarray()[0]
        got = np.zeros_like(expected)
        got[terms] = weights
        assert np.allclose(got, expected, atol=1e-12), text
        batch = scorer.score([text, "padding request"])[0]  # the vectorizer's own path
        assert np.allclose(scorer.score([text])[0], batch, atol=1e-6)
        for rows in ([3, 0, 4], [4, 4, 1], []):  # any order, repeated, none
            assert np.allclose(scorer.score_rows(text, np.array(rows, dtype=np.int64)), batch[rows], atol=1e-6)
