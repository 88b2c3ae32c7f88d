"""Training presets: every hyper-parameter of a run, in one dataclass.

``offline`` runs end to end on 2 CPU cores without a model hub, from the packaged all-MiniLM-L6-v2.
``offline-llm`` is the same with GPL's query generation done by a language model behind an
OpenAI-compatible endpoint (default: a local llama.cpp server on port 8011 serving SmolLM2-135M-Instruct).
``paper`` records the setting of Epure et al. (GPU and hub needed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from melscribe.config import PACKAGED_MINILM, PAPER_BI_ENCODER, PAPER_CROSS_ENCODER, PAPER_MINERS
from melscribe.errors import InvalidRequestError

@dataclass(frozen=True)
class Recipe:
    """What a recipe trains after the pairs: ``distil``, the objective of stage ``distil`` (``"margin-mse"``:
    GPL's MarginMSE distillation; ``"joint"``: MNRL + MarginMSE on the same batches) or ``None`` (the MNRL
    stage's model is the result); ``continues``: whether that stage starts from this run's MNRL bi-encoder
    rather than from ``student_base``."""

    distil: str | None
    continues: bool = False


#: Recipe name -> what it trains: the one place a recipe's name is read.
RECIPE_TABLE: dict[str, Recipe] = {
    "mnrl": Recipe(None),
    "gpl": Recipe("margin-mse"),
    "mnrl+gpl": Recipe("margin-mse", continues=True),
    "joint": Recipe("joint"),
    "mnrl+joint": Recipe("joint", continues=True),
}
RECIPES = tuple(RECIPE_TABLE)
QUERY_GENERATION = ("templates", "llm")
FUSION_QUERIES = ("captions", "llm")
LABEL_TEACHERS = ("cross-encoder", "fused")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the training pipeline (see the README's recipe section)."""

    recipe: str = "mnrl"
    seed: int = 42
    # 1. pairs (stage pairs; stage mnrl trains on them, fields mnrl_* below)
    train_sources: tuple[str, ...] = ("musiccaps",)
    docs_per_query: int = 3
    drop_empty: bool = True
    synthetic_per_track: int = 3  # GPL query generation: synthetic requests per training track (0: none)
    query_generation: str = "templates"  # "templates" (train/queries.py) or "llm" (melscribe.llm, an endpoint)
    llm_base_url: str = ""  # OpenAI-compatible endpoint of query_generation="llm" ("": $OPENAI_BASE_URL)
    llm_model: str = ""  # its model name (required with "llm"); the key comes from $OPENAI_API_KEY
    llm_concurrency: int = 4
    # 2. mine (stage mine, train/mine.py; denoising: train/denoise.py)
    miners: tuple[str, ...] = ("mnrl", "bm25")  # "mnrl": this run's MNRL bi-encoder (the retriever the teacher re-ranks)
    mine_depth: int = 50
    negatives_per_query: int = 10
    mine_queries: int | None = 6000  # requests mined, labelled and distilled (a seeded sample; None: all)
    denoise_overlap: float | None = 0.5  # a mined negative this close to a positive (Jaccard) is dropped (None: off)
    # 3. teacher (stage teacher, train/teacher.py)
    teacher_base: str = "mnrl"  # "mnrl": start from this run's MNRL bi-encoder's transformer, with a fresh head
    teacher_loss: str = "mnrl"  # "mnrl" (listwise, in-batch + mined negatives) or "bce" (pointwise)
    teacher_max_length: int = 96
    teacher_negatives_per_positive: int = 3  # hard, random, hard
    teacher_epochs: float = 1.0
    teacher_max_steps: int = -1
    teacher_batch_size: int = 32
    teacher_lr: float = 5e-5
    teacher_max_rows: int | None = 12000
    # 4. label (stage label, train/label.py)
    label_teacher: str = "cross-encoder"  # "cross-encoder" (stage teacher) or "fused" (MNRL bi-encoder + TF-IDF)
    label_batch_size: int = 64
    triplets_per_query: int = 2
    margin_denoise: bool = False  # drop triplets whose negative overlaps the positive or beats it (teacher)
    # 5. distil (stage distil, train/distil.py) and mnrl (stage mnrl, train/mnrl.py)
    student_base: str = PACKAGED_MINILM
    max_seq_length: int = 96
    similarity: str = "cos_sim"
    margin_scale: float = 5.0
    batch_size: int = 32
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    mnrl_batch_size: int = 64
    mnrl_epochs: float = 2.0
    mnrl_lr: float = 5e-5
    mnrl_max_steps: int = -1
    mnrl_hard_negatives: bool = False
    # leave out of MNRL's softmax the in-batch descriptor sets whose every descriptor occurs verbatim in the request
    # (false negatives: train/denoise.verbatim_false_negative)
    mnrl_denoise: bool = False
    margin_weight: float = 1.0  # recipe joint: MNRL + margin_weight x MarginMSE
    save_steps: int = 100
    bf16: bool = True  # bfloat16 autocast: about 1.7x faster on CPUs with AVX512-BF16/AMX, and on GPUs
    # 6. fusion (stage fusion, train/fusion.py), tuned on the clips of `heldout_tracks` training tracks that no stage above sees
    # TF-IDF over words and word pairs: descriptors are phrases, and on the held-out clips it fuses at least as well
    # as words alone (experiments/results/fusion_grid_tfidf-bigrams.md)
    fusion_lexical: str = "tfidf-bigrams"
    heldout_tracks: int = 300
    # the held-out clips' requests: their human "captions", or those plus a caption per clip written by the LLM
    # of llm_model/llm_base_url from its aspect list ("llm", the style of the MC requests; see README)
    fusion_queries: str = "captions"
    # fast student (stage fast, train/fast.py): static-distill, static-mnrl, layers-N or none
    fast_student: str = "static-distill"
    fast_max_texts: int | None = 50000  # texts whose bi-encoder embeddings are learnt (a seeded sample)
    fast_epochs: float | None = None  # None: the kind's default (melscribe.train.fast.DEFAULTS)
    fast_lr: float | None = None
    fast_batch_size: int | None = None
    fast_max_steps: int = -1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            problem = _out_of_range(f.name, getattr(self, f.name))
            if problem:
                raise InvalidRequestError(f"training setting {f.name}={getattr(self, f.name)!r}: {problem}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (unknown names raise ``TypeError``; values are checked)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict, for JSON."""
        return dataclasses.asdict(self)


#: The settings each stage's output depends on (besides the stages it reads): recorded with the output, and
#: compared on a rerun (:class:`melscribe.train.pipeline.TrainingRun`).
_TRAINER = ("student_base", "max_seq_length", "warmup_ratio", "save_steps", "bf16")
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "pairs": ("seed", "train_sources", "docs_per_query", "drop_empty", "synthetic_per_track", "query_generation",
              "llm_base_url", "llm_model", "heldout_tracks"),
    "mine": ("seed", "miners", "mine_depth", "negatives_per_query", "mine_queries"),
    "mnrl": ("seed", "mnrl_batch_size", "mnrl_epochs", "mnrl_lr", "mnrl_max_steps", "mnrl_hard_negatives",
             "mnrl_denoise", *_TRAINER),
    "teacher": ("seed", "denoise_overlap", "teacher_base", "teacher_loss", "teacher_max_length",
                "teacher_negatives_per_positive", "teacher_epochs", "teacher_max_steps", "teacher_batch_size",
                "teacher_lr", "teacher_max_rows", "save_steps", "bf16"),
    "label": ("seed", "label_teacher", "label_batch_size", "triplets_per_query", "margin_denoise", "fusion_lexical"),
    "distil": ("seed", "recipe", "similarity", "margin_scale", "batch_size", "epochs", "max_steps", "lr",
               "margin_weight", *_TRAINER),
    "fusion": ("seed", "recipe", "fusion_lexical", "fusion_queries", "heldout_tracks", "llm_base_url", "llm_model"),
    "fast": ("seed", "recipe", "fast_student", "fast_max_texts", "fast_epochs", "fast_lr", "fast_batch_size",
             "fast_max_steps", "max_seq_length", "save_steps", "bf16"),
}

#: Settings with a fixed set of values (the others are checked where they are used, see :func:`get_preset`).
CHOICES = {"recipe": RECIPES, "similarity": ("cos_sim", "dot"), "query_generation": QUERY_GENERATION,
           "fusion_queries": FUSION_QUERIES, "label_teacher": LABEL_TEACHERS}


def _out_of_range(name: str, value) -> str | None:
    """What is wrong with a setting's value, or ``None``: choices, and numbers by the kind of setting."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"choose one of {', '.join(CHOICES[name])}"
    if value is None or isinstance(value, (bool, str, tuple, list)):
        return None
    if name.endswith("lr") or name.endswith("epochs") or name == "margin_scale":
        return None if value > 0 else "must be positive"
    if name.endswith("max_steps"):
        return None if value == -1 or value > 0 else "must be positive, or -1 for no limit"
    if name in ("warmup_ratio",):
        return None if 0 <= value < 1 else "must lie in [0, 1)"
    if name == "denoise_overlap":
        return None if 0 < value <= 1 else "must lie in (0, 1], or None for off"
    if name in ("seed", "synthetic_per_track", "heldout_tracks", "margin_weight"):
        return None if value >= 0 else "must be at least 0"
    return None if value >= 1 else "must be at least 1"


#: Where the README's local llama.cpp server listens (``python -m llama_cpp.server ... --port 8011``).
LOCAL_LLM_URL = "http://127.0.0.1:8011/v1"

PRESETS: dict[str, TrainConfig] = {
    "offline": TrainConfig(),
    # the offline preset with requests written by a local LLM instead of templates (see `melscribe rephrase`)
    "offline-llm": TrainConfig(query_generation="llm", llm_base_url=LOCAL_LLM_URL, llm_model="smollm2",
                               llm_concurrency=1),
    "paper": TrainConfig(
        recipe="gpl",
        train_sources=("lp-musiccaps-mtt", "lp-musiccaps-msd"),
        synthetic_per_track=0,
        miners=PAPER_MINERS + ("bm25",),
        mine_depth=100,
        negatives_per_query=30,
        mine_queries=None,
        teacher_base=PAPER_CROSS_ENCODER,
        teacher_loss="bce",
        teacher_negatives_per_positive=2,
        teacher_max_rows=None,
        denoise_overlap=None,
        student_base=PAPER_BI_ENCODER,
        max_seq_length=512,
        batch_size=4,
        max_steps=140_000,
        similarity="cos_sim",
        save_steps=10_000,
        margin_scale=1.0,
        bf16=False,
    ),
}


def parse_settings(items: list[str]) -> dict:
    """``--set NAME=VALUE`` items → typed values by the type of each :class:`TrainConfig` field; a bad name
    or value raises :class:`InvalidRequestError` naming it (and what is allowed)."""
    import typing

    types = typing.get_type_hints(TrainConfig)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise InvalidRequestError(f"--set {item!r}: expected NAME=VALUE with NAME one of {', '.join(types)}")
        out[key] = _typed(key, value.strip(), types[key])
    return out


def _typed(name: str, value: str, kind) -> object:
    """``value`` as the type ``kind`` of setting ``name`` (``int``, ``float``, ``bool``, ``str``, a tuple of
    strings, or one of these or ``None``)."""
    import typing

    args = typing.get_args(kind)
    if type(None) in args:
        if value.lower() == "none":
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidRequestError(f"--set {name}={value}: expected true or false")
        return value.lower() in ("true", "1", "yes")
    if kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            raise InvalidRequestError(f"--set {name}={value}: expected {'a whole number' if kind is int else 'a number'}") from None
    if typing.get_origin(kind) is tuple:
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def get_preset(name: str, **overrides) -> TrainConfig:
    """A preset by name, with ``overrides`` applied. :class:`TrainConfig` checks each value's range and fixed
    choices (:data:`CHOICES`); what needs another module (losses, students, lexical scorers, an LLM) is checked
    here."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name].replace(**overrides)
    from melscribe.train.teacher import TEACHER_LOSSES

    if cfg.teacher_loss not in TEACHER_LOSSES:
        raise ValueError(f"unknown teacher_loss {cfg.teacher_loss!r}; choose one of {', '.join(TEACHER_LOSSES)}")
    from melscribe.train.fast import parse_kind

    parse_kind(cfg.fast_student)
    if cfg.query_generation == "llm" and cfg.synthetic_per_track and not cfg.llm_model:
        raise InvalidRequestError("query_generation=llm needs llm_model (and llm_base_url unless $OPENAI_BASE_URL is set), "
                         "e.g. --set llm_model=smollm2 --set llm_base_url=http://127.0.0.1:8011/v1")
    from melscribe.retrieval.scorers import LEXICAL_BASELINES

    if cfg.fusion_lexical not in LEXICAL_BASELINES:
        raise InvalidRequestError(f"unknown fusion_lexical {cfg.fusion_lexical!r}; choose one of {', '.join(LEXICAL_BASELINES)}")
    if cfg.fusion_queries == "llm" and cfg.heldout_tracks and not cfg.llm_model:
        raise InvalidRequestError("fusion_queries=llm needs llm_model (and llm_base_url unless $OPENAI_BASE_URL is set), "
                                  "e.g. --set llm_model=smollm2 --set llm_base_url=http://127.0.0.1:8011/v1")
    return cfg
