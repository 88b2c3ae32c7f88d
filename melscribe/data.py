"""Data loaders. Every loader returns a list of :class:`Record`.

Sources and their files under the data directory (see ``config.data_dir``):

========================  ==============================================  ===================
source                    file(s)                                         descriptors column
========================  ==============================================  ===================
``musiccaps``             ``musiccaps/musiccaps-public.csv``              ``aspect_list``
``lp-musiccaps-mtt``      ``lp-musiccaps-mtt/{split}.csv``                ``tag_top188``
``lp-musiccaps-msd``      ``lp-musiccaps-msd/{split}.csv``                ``tag``
``lp-musiccaps-mc``       ``lp-musiccaps-mc/{split}.csv``                 ``aspect_list``
``mc`` / ``mc_reco``      ``musiccaps-public.csv`` + ``mc_rephrased.csv``  ``aspect_list``
========================  ==============================================  ===================

Where a hub is reachable the LP-MusicCaps and MusicCaps loaders can read ``seungheondoh/LP-MusicCaps-*``
and ``google/MusicCaps`` through :mod:`datasets` instead (``from_hub=True``).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from melscribe.config import DATA_ENV, data_dir as _data_dir
from melscribe.errors import DataError

MUSICCAPS_CSV = Path("musiccaps") / "musiccaps-public.csv"
MC_REPHRASED_CSV = Path("lp-musiccaps-mc") / "mc_rephrased.csv"

#: LP-MusicCaps subsets: folder, hub name, descriptor column, splits.
LP_MUSICCAPS = {
    "mtt": ("lp-musiccaps-mtt", "seungheondoh/LP-MusicCaps-MTT", "tag_top188", ("train", "valid", "test")),
    "msd": ("lp-musiccaps-msd", "seungheondoh/LP-MusicCaps-MSD", "tag", ("train", "valid", "test")),
    "mc": ("lp-musiccaps-mc", "seungheondoh/LP-MusicCaps-MC", "aspect_list", ("train", "test")),
}
TRACK_ID_COLUMNS = ("track_id", "ytid", "fname", "id")
CAPTION_COLUMN = "caption_writing"


@dataclass(frozen=True)
class Record:
    """One captioned track: ``text`` is a caption, or a caption rephrased as a request."""

    track_id: str
    text: str
    descriptors: tuple[str, ...]
    split: str
    source: str
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)


def parse_descriptors(value: Any) -> tuple[str, ...]:
    """Turn a descriptor cell (list, Python-list literal, or comma-separated string) into unique,
    stripped, lower-cased descriptors in first-seen order."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ()
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                items = ast.literal_eval(s)
            except (ValueError, SyntaxError) as e:
                raise DataError(f"cannot parse descriptor list {s[:60]!r}: {e}") from None
        else:
            items = s.split(",")
    else:
        items = list(value)
    out: dict[str, None] = {}
    for it in items:
        t = str(it).strip().lower()
        if t:
            out.setdefault(t, None)
    return tuple(out)


def read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    """Read a CSV, naming the file (and the environment variable) if it is missing and the column if one
    of ``required`` is absent."""
    if not path.is_file():
        raise DataError(f"missing data file {path} (is --data-dir / ${DATA_ENV} the right directory?)")
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises many types for broken files
        raise DataError(f"cannot read {path}: {e}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}")
    return df


def _check_split(split: str | None, allowed: Iterable[str], source: str) -> None:
    allowed = tuple(allowed)
    if split is not None and split not in allowed:
        raise DataError(f"unknown split {split!r} for {source}; choose one of {', '.join(allowed)}")


def _as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes")


def load_musiccaps(data_dir: str | os.PathLike | None = None, split: str | None = None,
                   *, from_hub: bool = False) -> list[Record]:
    """MusicCaps clips: human caption, aspect list; ``is_audioset_eval`` True is the test split.

    ``split`` is ``"train"``, ``"test"`` or ``None`` (all 5,521 rows, file order).
    """
    _check_split(split, ("train", "test"), "musiccaps")
    required = ("ytid", "aspect_list", "caption", "is_audioset_eval")
    if from_hub:
        import datasets

        df = datasets.load_dataset("google/MusicCaps", split="train").to_pandas()
    else:
        df = read_csv(_data_dir(data_dir) / MUSICCAPS_CSV, required)
    records = []
    for row in df.itertuples(index=False):
        s = "test" if _as_bool(row.is_audioset_eval) else "train"
        if split is not None and s != split:
            continue
        meta = {"ytid": row.ytid}
        for col in ("start_s", "end_s"):
            if hasattr(row, col):
                meta[col] = int(getattr(row, col))
        records.append(Record(str(row.ytid), str(row.caption), parse_descriptors(row.aspect_list), s,
                              "musiccaps", meta=meta))
    return records


def load_lp_musiccaps(subset: str, split: str, data_dir: str | os.PathLike | None = None,
                      *, from_hub: bool = False) -> list[Record]:
    """LP-MusicCaps ``mtt``, ``msd`` or ``mc``: ``caption_writing`` as text, the subset's tag column as
    descriptors. Reads ``<data>/lp-musiccaps-<subset>/<split>.csv`` or, with ``from_hub``, the hub dataset."""
    if subset not in LP_MUSICCAPS:
        raise DataError(f"unknown LP-MusicCaps subset {subset!r}; choose one of {', '.join(LP_MUSICCAPS)}")
    folder, hub_name, tag_col, splits = LP_MUSICCAPS[subset]
    _check_split(split, splits, f"lp-musiccaps-{subset}")
    if from_hub:
        import datasets

        df = datasets.load_dataset(hub_name, split=split).to_pandas()
        path = Path(hub_name)
    else:
        path = _data_dir(data_dir) / folder / f"{split}.csv"
        df = read_csv(path, (tag_col, CAPTION_COLUMN))
    id_col = next((c for c in TRACK_ID_COLUMNS if c in df.columns), None)
    if id_col is None:
        raise DataError(f"{path} lacks a track id column (one of {', '.join(TRACK_ID_COLUMNS)})")
    records = []
    for tid, tags, caption in zip(df[id_col], df[tag_col], df[CAPTION_COLUMN]):
        if isinstance(caption, float) and pd.isna(caption):
            continue
        records.append(Record(str(tid), str(caption), parse_descriptors(tags), split, f"lp-musiccaps-{subset}"))
    return records


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1].strip()
    return s


def load_mc_test(data_dir: str | os.PathLike | None = None, *, rephrased: bool = False) -> list[Record]:
    """The LP-MusicCaps-MC test rows the paper evaluated, rebuilt by joining ``mc_rephrased.csv`` to the
    ``is_audioset_eval`` rows of ``musiccaps-public.csv`` (``caption_id`` = 0-based position among them).

    ``rephrased=False`` gives the MC requests (``caption_writing``); ``True`` gives MC_reco
    (``caption_rephrased``, outer quotes removed). As in the paper, pairs of MC_reco are built from the
    rephrased text itself: its relevant descriptor sets are those that occur verbatim in the request.
    """
    root = _data_dir(data_dir)
    test = load_musiccaps(root, split="test")
    reph = read_csv(root / MC_REPHRASED_CSV, ("caption_id", "caption", "caption_rephrased"))
    records = []
    for cid, caption, rephrased_text in zip(reph.caption_id, reph.caption, reph.caption_rephrased):
        cid = int(cid)
        if not 0 <= cid < len(test):
            raise DataError(f"{root / MC_REPHRASED_CSV}: caption_id {cid} is outside the {len(test)} test clips")
        base = test[cid]
        meta = dict(base.meta, caption_id=cid)
        if rephrased:
            records.append(Record(base.track_id, _unquote(str(rephrased_text)), base.descriptors, "test",
                                  "lp-musiccaps-mc-reco", meta=meta))
        else:
            records.append(Record(base.track_id, str(caption), base.descriptors, "test", "lp-musiccaps-mc",
                                  meta=meta))
    return records


#: Evaluation splits by name, as used in the tables.
TEST_SPLITS = {
    "MC": lambda d: load_mc_test(d),
    "MC_reco": lambda d: load_mc_test(d, rephrased=True),
    "MTT": lambda d: load_lp_musiccaps("mtt", "test", d),
    "MSD": lambda d: load_lp_musiccaps("msd", "test", d),
}


def load_test_split(name: str, data_dir: str | os.PathLike | None = None) -> list[Record]:
    """A test split of the paper's table by name: ``MC``, ``MC_reco``, ``MTT`` or ``MSD``."""
    if name not in TEST_SPLITS:
        raise DataError(f"unknown split {name!r}; choose one of {', '.join(TEST_SPLITS)}")
    return TEST_SPLITS[name](data_dir)


def export_lp_musiccaps(subset: str, split: str, frame: pd.DataFrame, data_dir: str | os.PathLike) -> Path:
    """Write one LP-MusicCaps split (a DataFrame, e.g. from ``datasets``) as the CSV the loaders read,
    ``<data>/lp-musiccaps-<subset>/<split>.csv``, atomically. List cells are written as Python-list literals."""
    if subset not in LP_MUSICCAPS:
        raise DataError(f"unknown LP-MusicCaps subset {subset!r}; choose one of {', '.join(LP_MUSICCAPS)}")
    folder, _, tag_col, splits = LP_MUSICCAPS[subset]
    _check_split(split, splits, f"lp-musiccaps-{subset}")
    missing = [c for c in (tag_col, CAPTION_COLUMN) if c not in frame.columns]
    if missing:
        raise DataError(f"LP-MusicCaps-{subset} {split} lacks column(s) {', '.join(missing)}")
    out = frame.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, tuple)) or hasattr(v, "tolist")).any():
            out[col] = out[col].map(lambda v: repr([str(x) for x in (v.tolist() if hasattr(v, "tolist") else v)]))
    path = Path(data_dir) / folder / f"{split}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def load_training_records(sources, data_dir=None) -> list[Record]:
    """Training records of the given sources (``musiccaps`` train split, or ``lp-musiccaps-mtt``/``-msd``
    train). Never a test split."""
    records: list[Record] = []
    for source in sources:
        if source == "musiccaps":
            records += load_musiccaps(data_dir, split="train")
        elif source.startswith("lp-musiccaps-"):
            records += load_lp_musiccaps(source.removeprefix("lp-musiccaps-"), "train", data_dir)
        else:
            raise ValueError(f"unknown training source {source!r}")
    return records
