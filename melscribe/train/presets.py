"""Training presets: named :class:`~melscribe.train.settings.TrainConfig` objects.

``offline`` runs end to end on 2 CPU cores without a model hub, from the packaged all-MiniLM-L6-v2.
``offline-llm`` is the same with GPL's query generation done by a language model behind an
OpenAI-compatible endpoint (default: a local llama.cpp server on port 8011 serving SmolLM2-135M-Instruct).
``paper`` records the setting of Epure et al. (GPU and hub needed).
"""

from __future__ import annotations

from typing import Any, Mapping

from melscribe.config import PAPER_BI_ENCODER, PAPER_CROSS_ENCODER, PAPER_MINERS
from melscribe.errors import InvalidRequestError
from melscribe.train.settings import TrainConfig

#: Where the README's local llama.cpp server listens (``python -m llama_cpp.server ... --port 8011``).
LOCAL_LLM_URL = "http://127.0.0.1:8011/v1"

PRESETS: dict[str, TrainConfig] = {
    "offline": TrainConfig(),
    # the offline preset with requests written by a local LLM instead of templates (see `melscribe rephrase`)
    "offline-llm": TrainConfig().with_settings({"pairs.query_generation": "llm", "llm.base_url": LOCAL_LLM_URL,
                                                "llm.model": "smollm2", "llm.concurrency": 1}),
    "paper": TrainConfig().with_settings({
        "recipe": "gpl",
        "pairs.sources": ("lp-musiccaps-mtt", "lp-musiccaps-msd"),
        "pairs.synthetic_per_track": 0,
        "mine.miners": PAPER_MINERS + ("bm25",),
        "mine.depth": 100,
        "mine.negatives_per_query": 30,
        "mine.queries": None,
        "teacher.base": PAPER_CROSS_ENCODER,
        "teacher.loss": "bce",
        "teacher.negatives_per_positive": 2,
        "teacher.max_rows": None,
        "teacher.denoise_overlap": None,
        "trainer.student_base": PAPER_BI_ENCODER,
        "trainer.max_seq_length": 512,
        "trainer.save_steps": 10_000,
        "trainer.bf16": False,
        "distil.batch_size": 4,
        "distil.max_steps": 140_000,
        "distil.similarity": "cos_sim",
        "distil.margin_scale": 1.0,
    }),
}


def get_preset(name: str, settings: Mapping[str, Any] | None = None) -> TrainConfig:
    """A preset by name, with ``settings`` (``{"mnrl.lr": 3e-5, ...}``) applied. The sections check each
    value's range and fixed choices; what needs another module (losses, students, lexical scorers, an LLM) is
    checked here."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name].with_settings(settings or {})
    from melscribe.train.teacher import TEACHER_LOSSES

    if cfg.teacher.loss not in TEACHER_LOSSES:
        raise ValueError(f"unknown teacher.loss {cfg.teacher.loss!r}; choose one of {', '.join(TEACHER_LOSSES)}")
    from melscribe.train.fast import parse_kind

    parse_kind(cfg.fast.student)
    if cfg.pairs.query_generation == "llm" and cfg.pairs.synthetic_per_track and not cfg.llm.model:
        raise InvalidRequestError("pairs.query_generation=llm needs llm.model (and llm.base_url unless $OPENAI_BASE_URL "
                                  "is set), e.g. --set llm.model=smollm2 --set llm.base_url=http://127.0.0.1:8011/v1")
    from melscribe.retrieval.scorers import LEXICAL_BASELINES

    if cfg.fusion.lexical not in LEXICAL_BASELINES:
        raise InvalidRequestError(f"unknown fusion.lexical {cfg.fusion.lexical!r}; choose one of {', '.join(LEXICAL_BASELINES)}")
    if cfg.fusion.queries == "llm" and cfg.pairs.heldout_tracks and not cfg.llm.model:
        raise InvalidRequestError("fusion.queries=llm needs llm.model (and llm.base_url unless $OPENAI_BASE_URL is set), "
                                  "e.g. --set llm.model=smollm2 --set llm.base_url=http://127.0.0.1:8011/v1")
    return cfg
