"""The training pipeline on a few dozen in-test records for a few steps, the batch sampler, raw-logit margins.
(Resuming after a kill is tested in ``test_faults.py``.)"""

import json
import random
import shutil

import numpy as np
import pytest

from melscribe.pairs import read_beir
from melscribe.encoding.reranker import Reranker, load_cross_encoder
from melscribe.retrieval.scorers import make_scorer
from melscribe.train.trainer import DistinctTrackBatchSampler
from melscribe.train.presets import get_preset

from tiny_fixtures import tiny_records

TINY = {"recipe": "mnrl+gpl", "pairs.synthetic_per_track": 1, "pairs.heldout_tracks": 12, "mine.depth": 8,
        "mine.negatives_per_query": 4, "teacher.max_rows": 64, "teacher.batch_size": 16, "mnrl.batch_size": 16,
        "mnrl.max_steps": 3, "mnrl.denoise": True, "distil.batch_size": 16, "distil.max_steps": 3,
        "trainer.save_steps": 3, "trainer.bf16": False,
        "fast.student": "none"}  # stage fast: tests/encoding/test_encoder.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from melscribe.train.pipeline import train

    out = tmp_path_factory.mktemp("run")
    records = tiny_records(30)
    cfg = get_preset("offline", TINY)
    final = train(cfg, out, records=records, publish_to=out / "published")
    return out, final, cfg, records


def test_each_stage_writes_what_the_next_reads(tiny_run):
    out, final, cfg, records = tiny_run
    ds = read_beir(out / "pairs", split="train")
    assert len(ds.queries) > 40 and all(rel for rel in ds.qrels.values())
    negatives = [json.loads(line) for line in (out / "negatives.jsonl").read_text().splitlines()]
    assert {n["query_id"] for n in negatives} == set(ds.queries)
    for n in negatives:
        assert 0 < len(n["negatives"]) <= cfg.mine.negatives_per_query
        assert not set(n["negatives"]) & set(ds.qrels[n["query_id"]]), "a positive was mined as a negative"
        assert set(n["negatives"]) <= set(ds.corpus)
    rows = (out / "margins.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["query-id", "positive-id", "negative-id", "track-id", "margin"]
    assert len(rows) - 1 == pytest.approx(len(ds.queries) * cfg.label.triplets_per_query, rel=0.2)
    for q, p, n, t, m in (r.split("\t") for r in rows[1:]):
        assert q in ds.queries and p in ds.qrels[q] and n not in ds.qrels[q] and ds.query_tracks[q] == t
    assert (out / "teacher" / "model" / "config.json").is_file()
    assert (out / "mnrl" / "model" / "modules.json").is_file()
    fusion = json.loads((out / "fusion.json").read_text())
    assert fusion["method"] in ("rrf", "weighted") and len(fusion["weights"]) == 2
    from melscribe.train.pipeline import TrainingRun

    trained_on, held_out = TrainingRun(out, cfg, records=records).records()
    held = {r.track_id for r in held_out}
    assert len(held) == cfg.pairs.heldout_tracks and not held & set(ds.query_tracks.values()), \
        "the clips the fusion is tuned on must be unseen by the bi-encoder"
    assert fusion["tuning"]["queries"] > 0
    assert json.loads((out / "run.json").read_text())["seconds"].keys() >= {"pairs", "mine", "teacher", "label",
                                                                             "mnrl", "distil", "fusion"}
    for folder in (final, out / "published"):
        assert (folder / "teacher" / "config.json").is_file(), "a GPL recipe publishes its teacher for rerank=N"
        scorer = make_scorer(f"fused:{folder}")
        scores = scorer.fit(["steel drums, tropical", "sad, piano"]).score(["tropical steel drums"])
        assert scores.shape == (1, 2) and scores[0, 0] > scores[0, 1]


def test_margins_match_raw_teacher_logits(tiny_run):
    import torch

    out, *_ = tiny_run
    ds = read_beir(out / "pairs", split="train")
    q, p, n, _, m = (out / "margins.tsv").read_text().splitlines()[1].split("\t")
    ce = load_cross_encoder(str(out / "teacher" / "model"))
    raw = ce.predict([(ds.queries[q], ds.corpus[p]), (ds.queries[q], ds.corpus[n])], activation_fn=torch.nn.Identity())
    assert float(m) == pytest.approx(float(raw[0] - raw[1]), abs=1e-3)


def test_margin_labels_are_not_squashed_by_a_sigmoid():
    import torch

    from melscribe.train.label import margin_labels

    ce = load_cross_encoder("all-MiniLM-L6-v2")
    head = ce.model.classifier
    with torch.no_grad():  # a fixed head (its random init depends on what ran before), logits of several units
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(0)) * 10.0)
    triplets = [("upbeat tropical steel drums", "steel drums, tropical", "sad, piano"),
                ("a sad piano ballad", "sad, piano, ballad", "heavy metal"),
                ("smooth jazz", "jazz, saxophone", "techno, fast")]
    margins = margin_labels(Reranker(ce, bf16=False), triplets, show_progress_bar=False)
    assert np.abs(margins).max() > 1.0, "margins look squashed into [-1, 1]"
    squashed = ce.predict([(q, p) for q, p, _ in triplets]) - ce.predict([(q, n) for q, _, n in triplets])
    assert not np.allclose(squashed, margins)


def _sharing_pairs(batch, keys):
    """Reference: every pair of rows of ``batch`` that share a key, by a plain double loop."""
    return [(a, b) for i, a in enumerate(batch) for b in batch[i + 1:] if keys[a] & keys[b]]


@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_never_hold_two_rows_that_share_a_key(drop_last):
    rng = random.Random(0)
    # 400 rows over 15 tracks and 40 texts: most rows collide with many others
    keys = [frozenset({f"t:{rng.randrange(15)}", f"d:{rng.randrange(40)}"}) for _ in range(400)]
    lengths = [rng.randrange(5, 60) for _ in keys]
    sampler = DistinctTrackBatchSampler(keys, lengths, batch_size=8, drop_last=drop_last, seed=3, chunk_batches=5)
    epochs = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        assert len(sampler) == len(batches)
        for batch in batches:
            assert _sharing_pairs(batch, keys) == []
            assert len(batch) == 8 if drop_last else 1 <= len(batch) <= 8
        rows = sorted(i for batch in batches for i in batch)
        if drop_last:
            assert len(set(rows)) == len(rows) and len(rows) > 200
        else:
            assert rows == list(range(400))  # every row exactly once
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # a new epoch, a new order
    sampler.set_epoch(0)
    assert sampler.batches() == epochs[0]  # seeded


def test_denoising_drops_negatives_that_share_most_descriptors_with_a_positive():
    from melscribe.train.denoise import denoise_margins, denoise_negatives, overlap

    assert overlap("male voice, rubab", "Male Voice") == pytest.approx(1 / 2)
    assert overlap("bass, drums, guitar", "bass") == pytest.approx(1 / 3)
    assert overlap("a, b", "c") == 0.0 and overlap("", "a") == 0.0
    corpus = {"p1": "male voice, rubab", "p2": "folk, accordion", "n1": "male voice", "n2": "bass, drums, guitar",
              "n3": "folk, accordion, sad", "n4": "techno"}
    kept, dropped = denoise_negatives({"q": ["n1", "n2", "n3", "n4"]}, {"q": {"p1": 1, "p2": 1}}, corpus, 0.5)
    # n1 shares 1 of 2 with p1 (0.5), n3 2 of 3 with p2 (0.67): probably relevant; n2 and n4 are kept
    assert kept == {"q": ["n2", "n4"]} and dropped == 2
    assert denoise_negatives({"q": ["n1"]}, {"q": {"p1": 1}}, corpus, None) == ({"q": ["n1"]}, 0)
    assert denoise_margins([2.0, -0.5, 0.0, -3.0], 0.0) == [0, 2]
    assert denoise_margins([2.0, -0.5, -3.0], 1.0) == [0, 1]
    assert denoise_margins([-9.0], None) == [0]


def test_a_set_of_descriptors_all_verbatim_in_the_request_is_a_false_negative():
    from melscribe.train.denoise import verbatim_false_negative

    request = "A Male Voice sings over an acoustic guitar, no drums"
    assert verbatim_false_negative(request, "male voice, acoustic guitar")
    assert verbatim_false_negative(request, "guitar")  # a substring, as the pairs rule matches descriptors
    assert not verbatim_false_negative(request, "male voice, piano")  # one descriptor is not in the request
    assert not verbatim_false_negative(request, "female voice")
    assert not verbatim_false_negative(request, "")


def test_denoised_mnrl_is_mnrl_without_the_false_negatives(minilm):
    import torch
    import torch.nn.functional as F
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from melscribe.train.losses import DenoisedMNRLLoss

    requests = ["a male voice over an acoustic guitar", "fast drums and a distorted guitar", "a calm piano piece"]
    positives = ["male voice, folk", "distorted guitar, rock", "piano, calm"]
    negatives = ["guitar", "acoustic guitar, male voice", "drums"]
    loss = DenoisedMNRLLoss(minilm, requests, [positives, negatives])
    mask = loss.false_negatives([0, 1, 2])
    # columns: positives of rows 0-2, then negatives of rows 0-2; a row's own positive is never masked
    assert mask.nonzero().tolist() == [[0, 3], [0, 4], [1, 3], [1, 5]]
    assert loss.false_negatives([2, 1])[0].tolist() == [False, False, False, False]  # by row index, any order
    features = [minilm.tokenize(c) for c in (requests, positives, negatives)]
    rows = torch.tensor([0.0, 1.0, 2.0])
    with torch.no_grad():
        got = float(loss(features, rows))
        q, p, n = (F.normalize(minilm(f)["sentence_embedding"], dim=-1) for f in features)
        docs = torch.cat([p, n])
        expected = 0.0  # the reference loop: each request's softmax over the documents that are not masked
        for i in range(3):
            kept = [c for c in range(6) if not mask[i, c]]
            logits = 20.0 * (q[i] @ docs[kept].T)
            expected -= float(F.log_softmax(logits, dim=0)[kept.index(i)]) / 3
        assert got == pytest.approx(expected, rel=1e-4)
        assert loss.masked == 4
        # no false negative in the batch: exactly sentence-transformers' MNRL
        plain = DenoisedMNRLLoss(minilm, requests, [positives])
        pair_features = features[:2]
        assert not plain.false_negatives([0, 1, 2]).any()
        assert float(plain(pair_features, rows)) == pytest.approx(
            float(MultipleNegativesRankingLoss(minilm)(pair_features, rows)), rel=1e-5)


@pytest.mark.parametrize("loss", ["mnrl", "bce"])
def test_teacher_trains_from_a_bi_encoder_with_either_loss(tmp_path, loss):
    from melscribe.encoding.reranker import Reranker
    from melscribe.train.settings import TeacherSettings, TrainerSettings
    from melscribe.train.teacher import train_teacher

    examples = [(f"a track with {d}", d, [o for o in ("steel drums", "piano", "techno", "choir") if o != d][:2])
                for d in ("steel drums", "piano", "techno", "choir")] * 4
    trainer = TrainerSettings(save_steps=2, bf16=False)
    folder = train_teacher(examples, tmp_path / loss, TeacherSettings(loss=loss, max_steps=2, batch_size=4), trainer,
                           base="all-MiniLM-L6-v2")
    logits = Reranker(str(folder), bf16=False).score("a track with piano", ["piano", "techno"])
    assert logits.shape == (2,) and np.isfinite(logits).all()
    assert (tmp_path / loss / "checkpoints" / "checkpoint-2").is_dir(), "a killed run resumes from checkpoints"
    with pytest.raises(ValueError, match="same number of negatives"):
        train_teacher([("q", "d", ["n"]), ("q", "d", ["n", "m"])], tmp_path / "x", TeacherSettings(loss=loss), trainer,
                      base="all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="unknown teacher loss"):
        train_teacher(examples, tmp_path / "y", TeacherSettings(loss="hinge"), trainer, base="all-MiniLM-L6-v2")


def test_joint_loss_is_mnrl_plus_margin_mse_on_the_same_batch(minilm):
    import torch
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss, MultipleNegativesRankingLoss

    from melscribe.train.losses import MNRLPlusMarginMSE, ScaledSimilarity

    columns = [["steel drums please", "a sad piano", "dark techno"], ["steel drums, calypso", "piano, sad", "techno"],
               ["metal", "happy pop", "lullaby"]]
    features = [minilm.tokenize(c) for c in columns]
    labels = torch.tensor([3.0, 1.5, -0.5])
    joint = MNRLPlusMarginMSE(minilm, "cos_sim", margin_scale=5.0, weight=0.7)
    mnrl = MultipleNegativesRankingLoss(minilm)
    mse = MarginMSELoss(minilm, similarity_fct=ScaledSimilarity("cos_sim", 5.0))
    with torch.no_grad():
        expected = mnrl(features, labels) + 0.7 * mse(features, labels)
        assert float(joint(features, labels)) == pytest.approx(float(expected), rel=1e-5)


def test_fused_teacher_ranks_as_the_weighted_fusion_in_cosine_units():
    from melscribe.encoding.encoder import TextEncoder
    from melscribe.retrieval.fusion.weighted import weighted_fusion
    from melscribe.retrieval.scorers import TfidfScorer
    from melscribe.train.label import FusedTeacher, margin_labels

    corpus = ["steel drums, calypso", "piano, sad", "techno, fast", "jazz, saxophone", "choir, church", "metal, guitar"]
    queries = ["upbeat steel drums", "a sad piano song", "fast techno with jazz saxophone"]
    teacher = FusedTeacher("all-MiniLM-L6-v2", corpus, "tfidf", weight=0.5, scale=5.0)
    pairs = [(q, d) for q in queries for d in corpus[::-1]]  # queries interleaved with every document
    got = teacher.score_pairs(pairs).reshape(len(queries), len(corpus))[:, ::-1]
    enc = TextEncoder("all-MiniLM-L6-v2")
    dense = enc.encode(queries) @ enc.encode(corpus).T
    lex = TfidfScorer().fit(corpus).score(queries)
    fused = weighted_fusion([dense, lex], [1.0, 0.5])
    assert (np.argsort(-got, axis=1) == np.argsort(-fused, axis=1)).all()
    # in cosine units: the fused score's spread over the corpus is 5 × the dense one's, times the fused z's
    assert np.allclose(got - got.mean(axis=1, keepdims=True), 5.0 * dense.std(axis=1, keepdims=True) * fused, atol=1e-4)
    margins = margin_labels(teacher, [(queries[0], corpus[0], corpus[1])], show_progress_bar=False)
    assert margins[0] == pytest.approx(got[0, 0] - got[0, 1], abs=1e-5) and margins[0] > 0
    with pytest.raises(ValueError, match="not in the teacher's corpus"):
        teacher.score_pairs([("q", "kazoo")])


@pytest.mark.parametrize("recipe, label_teacher", [("mnrl+joint", "fused"), ("gpl", "cross-encoder")])
def test_other_recipes_reuse_the_shared_stages(tiny_run, tmp_path, recipe, label_teacher):
    from melscribe.train.pipeline import train

    out, _, cfg, records = tiny_run
    run = tmp_path / recipe
    for name in ("pairs", "mnrl", "negatives.jsonl", "teacher", "run.json"):
        (shutil.copytree if (out / name).is_dir() else shutil.copy2)(out / name, run / name)
    other = cfg.with_settings({"recipe": recipe, "label.teacher": label_teacher, "label.margin_denoise": True})
    final = train(other, run, records=records)
    info = json.loads((run / "run.json").read_text())
    assert {"label", "distil", "fusion"} <= info["seconds"].keys()
    kept = info["denoised_triplets"]["kept"]
    assert 0 < kept <= len((run / "margins.tsv").read_text().splitlines()) - 1
    assert (final / "teacher").is_dir() == (label_teacher == "cross-encoder")
    if label_teacher == "fused":
        assert info["label_teacher"]["kind"] == "fused" and info["label_teacher"]["weight"] > 0
    scores = make_scorer(str(final)).fit(["steel drums, tropical", "sad, piano"]).score(["tropical steel drums"])
    assert scores[0, 0] > scores[0, 1]


def test_the_preset_refuses_an_unknown_lexical_scorer_for_the_fusion():
    from melscribe.retrieval.scorers import BASELINES, LEXICAL_BASELINES

    assert set(LEXICAL_BASELINES) <= set(BASELINES)
    assert get_preset("offline", {"fusion.lexical": "bm25"}).fusion.lexical == "bm25"
    with pytest.raises(ValueError, match="unknown fusion.lexical 'splade'; choose one of tfidf, tfidf-bigrams, bm25"):
        get_preset("offline", {"fusion.lexical": "splade"})


def test_a_rerun_with_other_settings_for_a_finished_stage_is_refused(tiny_run, tmp_path):
    from melscribe.errors import InvalidRequestError
    from melscribe.train.pipeline import TrainingRun, restart_run

    out, _, cfg, records = tiny_run
    settings = json.loads((out / "run.json").read_text())["stage_settings"]
    assert settings["mnrl"]["mnrl.lr"] == cfg.mnrl.lr and set(settings) >= {"pairs", "mine", "mnrl", "distil"}
    with pytest.raises(InvalidRequestError, match=r"mnrl.lr: 5e-05 there, 1e-05 now.*--restart"):
        TrainingRun(out, cfg.with_settings({"mnrl.lr": 1e-5}), records=records)
    TrainingRun(out, cfg.with_settings({"fast.lr": 0.1}), records=records)  # stage fast has not run: nothing to refuse
    TrainingRun(out, cfg, records=records)  # the same settings: the finished stages are reused
    from melscribe.train.settings import FLAT_NAMES

    older = tmp_path / "older"  # a run folder written before the sections: flat names in its run.json
    shutil.copytree(out, older)
    flat = {dotted: name for name, dotted in FLAT_NAMES.items()}
    info = json.loads((older / "run.json").read_text())
    info["stage_settings"] = {stage: {flat.get(k, k): v for k, v in values.items()}
                              for stage, values in info["stage_settings"].items()}
    assert "mnrl_lr" in info["stage_settings"]["mnrl"]
    (older / "run.json").write_text(json.dumps(info))
    TrainingRun(older, cfg, records=records)
    with pytest.raises(InvalidRequestError, match=r"mnrl.lr: 5e-05 there, 1e-05 now"):
        TrainingRun(older, cfg.with_settings({"mnrl.lr": 1e-5}), records=records)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(InvalidRequestError, match="not a melscribe training run"):
        restart_run(mine)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    restart_run(run)
    assert not run.exists() and (mine / "notes.txt").is_file()
