"""The training configuration as objects: one section per stage (``mnrl.lr``, ``teacher.loss``, …), one for
what the stages' trainers share (``trainer``), and :class:`TrainConfig` holding them with the recipe and the
seed. Each stage function takes its section whole (:mod:`melscribe.train.mnrl`, :mod:`~melscribe.train.distil`,
:mod:`~melscribe.train.teacher`, :mod:`~melscribe.train.fast`); values are checked when a section is made.

Settings are named ``section.field`` (``--set mnrl.lr=3e-5``); the flat names of the former one-level
configuration (``mnrl_lr``) are still read, mapped by :data:`FLAT_NAMES` with a :class:`FutureWarning`.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from melscribe.config import PACKAGED_MINILM
from melscribe.errors import InvalidRequestError
from melscribe.train.recipes import RECIPES
from melscribe.train.schedule import Schedule

#: Settings with a fixed set of values (the others are checked where they are used, see
#: :func:`melscribe.train.presets.get_preset`).
CHOICES: dict[str, tuple[str, ...]] = {
    "recipe": RECIPES,
    "distil.similarity": ("cos_sim", "dot"),
    "pairs.query_generation": ("templates", "llm"),
    "fusion.queries": ("captions", "llm"),
    "label.teacher": ("cross-encoder", "fused"),
}


def _problem(name: str, value) -> str | None:
    """What is wrong with setting ``name``'s value, or ``None``: choices, and numbers by the kind of setting."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"choose one of {', '.join(CHOICES[name])}"
    if value is None or isinstance(value, (bool, str, tuple, list)):
        return None
    leaf = name.rpartition(".")[2]
    if leaf.endswith("lr") or leaf.endswith("epochs") or leaf == "margin_scale":
        return None if value > 0 else "must be positive"
    if leaf.endswith("max_steps"):
        return None if value == -1 or value > 0 else "must be positive, or -1 for no limit"
    if leaf == "warmup_ratio":
        return None if 0 <= value < 1 else "must lie in [0, 1)"
    if leaf == "denoise_overlap":
        return None if 0 < value <= 1 else "must lie in (0, 1], or None for off"
    if leaf in ("seed", "synthetic_per_track", "heldout_tracks", "margin_weight"):
        return None if value >= 0 else "must be at least 0"
    return None if value >= 1 else "must be at least 1"


class _Section:
    """A section of the configuration: its name, and its values checked when it is made."""

    NAME = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                continue
            name = f"{self.NAME}.{f.name}" if self.NAME else f.name
            problem = _problem(name, value)
            if problem:
                raise InvalidRequestError(f"training setting {name}={value!r}: {problem}")


class _Scheduled(_Section):
    """A section of a stage that trains: its ``batch_size``, ``epochs``, ``max_steps`` and ``lr`` as one
    :class:`~melscribe.train.schedule.Schedule`."""

    @property
    def schedule(self) -> Schedule:
        """The stage's batch size, length and learning rate."""
        return Schedule(self.batch_size, self.epochs, self.max_steps, self.lr)


@dataclass(frozen=True)
class PairsSettings(_Section):
    """Stage ``pairs``: the (request, descriptor set) pairs, with GPL's synthetic requests."""

    NAME = "pairs"
    sources: tuple[str, ...] = ("musiccaps",)
    docs_per_query: int = 3
    drop_empty: bool = True
    synthetic_per_track: int = 3  # GPL query generation: synthetic requests per training track (0: none)
    query_generation: str = "templates"  # "templates" (train/queries.py) or "llm" (melscribe.llm, an endpoint)
    heldout_tracks: int = 300  # tracks kept out of every stage but fusion, which is tuned on their clips


@dataclass(frozen=True)
class LLMSettings(_Section):
    """The language model of ``pairs.query_generation="llm"`` and ``fusion.queries="llm"``."""

    NAME = "llm"
    base_url: str = ""  # OpenAI-compatible endpoint ("": $OPENAI_BASE_URL)
    model: str = ""  # its model name (required when used); the key comes from $OPENAI_API_KEY
    concurrency: int = 4


@dataclass(frozen=True)
class MineSettings(_Section):
    """Stage ``mine``: hard negatives from off-the-shelf retrievers (:mod:`melscribe.train.mine`)."""

    NAME = "mine"
    miners: tuple[str, ...] = ("mnrl", "bm25")  # "mnrl": this run's MNRL bi-encoder
    depth: int = 50
    negatives_per_query: int = 10
    queries: int | None = 6000  # requests mined, labelled and distilled (a seeded sample; None: all)


@dataclass(frozen=True)
class MNRLSettings(_Scheduled):
    """Stage ``mnrl``: in-batch-negatives training of the bi-encoder (:mod:`melscribe.train.mnrl`)."""

    NAME = "mnrl"
    batch_size: int = 64
    epochs: float = 2.0
    max_steps: int = -1
    lr: float = 5e-5
    hard_negatives: bool = False  # one mined negative per pair
    # leave out of the softmax the in-batch descriptor sets whose every descriptor occurs verbatim in the request
    # (false negatives: train/denoise.verbatim_false_negative)
    denoise: bool = False


@dataclass(frozen=True)
class TeacherSettings(_Scheduled):
    """Stage ``teacher``: the music cross-encoder (:mod:`melscribe.train.teacher`)."""

    NAME = "teacher"
    base: str = "mnrl"  # "mnrl": this run's MNRL bi-encoder's transformer, with a fresh head
    loss: str = "mnrl"  # "mnrl" (listwise, in-batch + mined negatives) or "bce" (pointwise)
    max_length: int = 96
    negatives_per_positive: int = 3  # hard, random, hard
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 32
    lr: float = 5e-5
    max_rows: int | None = 12000
    denoise_overlap: float | None = 0.5  # a mined negative this close to a positive (Jaccard) is dropped (None: off)


@dataclass(frozen=True)
class LabelSettings(_Section):
    """Stage ``label``: the teacher's margins on (request, positive, negative) triplets."""

    NAME = "label"
    teacher: str = "cross-encoder"  # "cross-encoder" (stage teacher) or "fused" (MNRL bi-encoder + TF-IDF)
    batch_size: int = 64
    triplets_per_query: int = 2
    margin_denoise: bool = False  # drop triplets whose negative overlaps the positive or beats it (teacher)


@dataclass(frozen=True)
class DistilSettings(_Scheduled):
    """Stage ``distil``: MarginMSE distillation, or MNRL + MarginMSE for the joint recipes."""

    NAME = "distil"
    similarity: str = "cos_sim"
    margin_scale: float = 5.0
    batch_size: int = 32
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 2e-5
    margin_weight: float = 1.0  # recipe joint: MNRL + margin_weight x MarginMSE


@dataclass(frozen=True)
class FusionSettings(_Section):
    """Stage ``fusion``: dense + lexical fusion tuned on the held-out clips (:mod:`melscribe.train.fusion`)."""

    NAME = "fusion"
    # TF-IDF over words and word pairs: descriptors are phrases, and on the held-out clips it fuses at least as
    # well as words alone (experiments/results/fusion_grid_tfidf-bigrams.md)
    lexical: str = "tfidf-bigrams"
    # the held-out clips' requests: their human captions, or those plus a caption per clip written by the LLM
    queries: str = "captions"


@dataclass(frozen=True)
class FastSettings(_Section):
    """Stage ``fast``: the fast student (:mod:`melscribe.train.fast`); ``None``: the kind's default."""

    NAME = "fast"
    student: str = "static-distill"  # static-distill, static-mnrl, layers-N or none
    max_texts: int | None = 50000  # texts whose bi-encoder embeddings are learnt (a seeded sample)
    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_steps: int = -1


@dataclass(frozen=True)
class TrainerSettings(_Section):
    """What the bi-encoder trainings (stages ``mnrl``, ``distil``, ``fast``) share, and partly the teacher's."""

    NAME = "trainer"
    student_base: str = PACKAGED_MINILM
    max_seq_length: int | None = 96  # None: the model's own
    warmup_ratio: float = 0.1
    save_steps: int = 100
    bf16: bool = True  # bfloat16 autocast: about 1.7x faster on CPUs with AVX512-BF16/AMX, and on GPUs


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Every setting of a training run: the recipe, the seed, and one section per stage."""

    recipe: str = "mnrl"
    seed: int = 42
    pairs: PairsSettings = field(default_factory=PairsSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    mine: MineSettings = field(default_factory=MineSettings)
    mnrl: MNRLSettings = field(default_factory=MNRLSettings)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    distil: DistilSettings = field(default_factory=DistilSettings)
    fusion: FusionSettings = field(default_factory=FusionSettings)
    fast: FastSettings = field(default_factory=FastSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)

    def replace(self, **sections) -> "TrainConfig":
        """A copy with whole sections (or ``recipe``, ``seed``) replaced."""
        return dataclasses.replace(self, **sections)

    def with_settings(self, changes: Mapping[str, Any]) -> "TrainConfig":
        """A copy with settings changed by name: ``{"mnrl.lr": 3e-5, "recipe": "gpl"}`` (a former flat name
        is mapped, with a :class:`FutureWarning`). An unknown name raises :class:`InvalidRequestError`; values
        are checked as the sections are made."""
        top: dict[str, Any] = {}
        by_section: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            value = tuple(value) if isinstance(value, list) else value  # from JSON
            section, _, key = canonical_name(name).partition(".")
            if key:
                by_section.setdefault(section, {})[key] = value
            else:
                top[section] = value
        for section, values in by_section.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict:
        """Nested plain dict, for JSON."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Every setting by its dotted name, as JSON-like values (tuples as lists)."""
        out = {}
        for name, value in self.to_dict().items():
            if isinstance(value, dict):
                out.update({f"{name}.{k}": list(v) if isinstance(v, tuple) else v for k, v in value.items()})
            else:
                out[name] = value
        return out


def setting_types() -> dict[str, Any]:
    """Each setting's dotted name → its type annotation."""
    types: dict[str, Any] = {}
    for name, kind in typing.get_type_hints(TrainConfig).items():
        if dataclasses.is_dataclass(kind):
            types.update({f"{name}.{k}": v for k, v in typing.get_type_hints(kind).items()})
        else:
            types[name] = kind
    return types


#: The names of the former flat configuration → the dotted names that replace them.
FLAT_NAMES: dict[str, str] = {
    "train_sources": "pairs.sources", "docs_per_query": "pairs.docs_per_query", "drop_empty": "pairs.drop_empty",
    "synthetic_per_track": "pairs.synthetic_per_track", "query_generation": "pairs.query_generation",
    "heldout_tracks": "pairs.heldout_tracks",
    "llm_base_url": "llm.base_url", "llm_model": "llm.model", "llm_concurrency": "llm.concurrency",
    "miners": "mine.miners", "mine_depth": "mine.depth", "negatives_per_query": "mine.negatives_per_query",
    "mine_queries": "mine.queries",
    "teacher_base": "teacher.base", "teacher_loss": "teacher.loss", "teacher_max_length": "teacher.max_length",
    "teacher_negatives_per_positive": "teacher.negatives_per_positive", "teacher_epochs": "teacher.epochs",
    "teacher_max_steps": "teacher.max_steps", "teacher_batch_size": "teacher.batch_size", "teacher_lr": "teacher.lr",
    "teacher_max_rows": "teacher.max_rows", "denoise_overlap": "teacher.denoise_overlap",
    "label_teacher": "label.teacher", "label_batch_size": "label.batch_size",
    "triplets_per_query": "label.triplets_per_query", "margin_denoise": "label.margin_denoise",
    "similarity": "distil.similarity", "margin_scale": "distil.margin_scale", "batch_size": "distil.batch_size",
    "epochs": "distil.epochs", "max_steps": "distil.max_steps", "lr": "distil.lr",
    "margin_weight": "distil.margin_weight",
    "mnrl_batch_size": "mnrl.batch_size", "mnrl_epochs": "mnrl.epochs", "mnrl_lr": "mnrl.lr",
    "mnrl_max_steps": "mnrl.max_steps", "mnrl_hard_negatives": "mnrl.hard_negatives", "mnrl_denoise": "mnrl.denoise",
    "fusion_lexical": "fusion.lexical", "fusion_queries": "fusion.queries",
    "fast_student": "fast.student", "fast_max_texts": "fast.max_texts", "fast_epochs": "fast.epochs",
    "fast_lr": "fast.lr", "fast_batch_size": "fast.batch_size", "fast_max_steps": "fast.max_steps",
    "student_base": "trainer.student_base", "max_seq_length": "trainer.max_seq_length",
    "warmup_ratio": "trainer.warmup_ratio", "save_steps": "trainer.save_steps", "bf16": "trainer.bf16",
}


def canonical_name(name: str, warn: bool = True) -> str:
    """A setting's dotted name: ``name`` itself, or the one a former flat name maps to (with a
    :class:`FutureWarning` unless ``warn`` is false). Unknown names raise :class:`InvalidRequestError`."""
    name = name.strip().replace("-", "_")
    types = setting_types()
    if name in types:
        return name
    if name in FLAT_NAMES:
        if warn:
            warnings.warn(f"training setting {name!r} is now named {FLAT_NAMES[name]!r}; the flat name will be "
                          "removed in a later release", FutureWarning, stacklevel=3)
        return FLAT_NAMES[name]
    raise InvalidRequestError(f"unknown training setting {name!r}; the settings are {', '.join(types)}")


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` items → ``{dotted name: typed value}`` by each setting's type (former flat names
    mapped, with a warning); a bad name or value raises :class:`InvalidRequestError` naming it."""
    types = setting_types()
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidRequestError(f"--set {item!r}: expected NAME=VALUE with NAME one of {', '.join(types)}")
        try:
            name = canonical_name(key)
        except InvalidRequestError:
            raise InvalidRequestError(f"--set {item!r}: expected NAME=VALUE with NAME one of {', '.join(types)}") from None
        out[name] = _typed(name, value.strip(), types[name])
    return out


def _typed(name: str, value: str, kind) -> object:
    """``value`` as the type ``kind`` of setting ``name`` (``int``, ``float``, ``bool``, ``str``, a tuple of
    strings, or one of these or ``None``)."""
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
