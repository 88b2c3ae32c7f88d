import pandas as pd
import pytest

from tiny_fixtures import write_musiccaps
from melscribe.data import (load_lp_musiccaps, load_mc_test, load_musiccaps, load_test_split, parse_descriptors)
from melscribe.errors import DataError

ROWS = [
    ("a1", ["low quality", "sad", "ballad", "sad"], "A sad ballad. It is low quality.", True),
    ("b2", ["rock", "electric guitar"], "A rock song with electric guitar.", False),
    ("c3", ["jazz", "saxophone"], "Smooth jazz with a saxophone.", True),
]


def test_parse_descriptors_forms():
    assert parse_descriptors("['Low quality', 'sad', 'sad']") == ("low quality", "sad")
    assert parse_descriptors("rock, pop ,  ") == ("rock", "pop")
    assert parse_descriptors(["A", "b"]) == ("a", "b")
    assert parse_descriptors(float("nan")) == ()
    with pytest.raises(DataError, match="cannot parse"):
        parse_descriptors("['unclosed")


def test_musiccaps_loader_splits(tmp_path):
    write_musiccaps(tmp_path, ROWS)
    all_rows = load_musiccaps(tmp_path)
    assert [r.track_id for r in all_rows] == ["a1", "b2", "c3"]
    assert all_rows[0].descriptors == ("low quality", "sad", "ballad")
    assert [r.track_id for r in load_musiccaps(tmp_path, split="test")] == ["a1", "c3"]
    assert [r.split for r in load_musiccaps(tmp_path, split="train")] == ["train"]
    assert all_rows[0].meta["start_s"] == 0 and all_rows[0].source == "musiccaps"


def test_mc_join_and_rephrased(tmp_path):
    write_musiccaps(tmp_path, ROWS)
    reph = tmp_path / "lp-musiccaps-mc" / "mc_rephrased.csv"
    reph.parent.mkdir()
    pd.DataFrame({"caption_id": [1, 0], "caption": ["jazz caption", "ballad caption"],
                  "caption_rephrased": ['"Play me smooth jazz"', "Something sad"]}).to_csv(reph, index=False)
    mc = load_mc_test(tmp_path)
    assert [(r.track_id, r.text) for r in mc] == [("c3", "jazz caption"), ("a1", "ballad caption")]
    reco = load_mc_test(tmp_path, rephrased=True)
    assert [r.text for r in reco] == ["Play me smooth jazz", "Something sad"]
    assert reco[0].descriptors == ("jazz", "saxophone")


def test_mc_join_out_of_range(tmp_path):
    write_musiccaps(tmp_path, ROWS)
    reph = tmp_path / "lp-musiccaps-mc" / "mc_rephrased.csv"
    reph.parent.mkdir()
    pd.DataFrame({"caption_id": [5], "caption": ["x"], "caption_rephrased": ["y"]}).to_csv(reph, index=False)
    with pytest.raises(DataError, match="caption_id 5"):
        load_mc_test(tmp_path)


@pytest.mark.parametrize("subset,tag_col,id_col", [("mtt", "tag_top188", "track_id"), ("msd", "tag", "track_id"),
                                                   ("mc", "aspect_list", "ytid")])
def test_lp_musiccaps_loaders(tmp_path, subset, tag_col, id_col):
    folder = tmp_path / f"lp-musiccaps-{subset}"
    folder.mkdir()
    pd.DataFrame({id_col: ["t1", "t2"], tag_col: ["['guitar', 'rock']", "['piano']"],
                  "caption_writing": ["A rock track with guitar.", "Solo piano."],
                  "caption_summary": ["x", "y"]}).to_csv(folder / "test.csv", index=False)
    recs = load_lp_musiccaps(subset, "test", tmp_path)
    assert [(r.track_id, r.descriptors) for r in recs] == [("t1", ("guitar", "rock")), ("t2", ("piano",))]
    assert recs[0].source == f"lp-musiccaps-{subset}" and recs[0].text == "A rock track with guitar."
    if subset != "mc":
        assert [r.track_id for r in load_test_split(subset.upper(), tmp_path)] == ["t1", "t2"]


def test_missing_column_is_named(tmp_path):
    folder = tmp_path / "lp-musiccaps-mtt"
    folder.mkdir()
    pd.DataFrame({"track_id": ["t1"], "caption_writing": ["x"]}).to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError, match="lacks column.*tag_top188"):
        load_lp_musiccaps("mtt", "train", tmp_path)


def test_missing_file_names_file_and_variable(tmp_path):
    with pytest.raises(DataError, match=r"musiccaps-public\.csv.*MELSCRIBE_DATA"):
        load_musiccaps(tmp_path)


def test_missing_data_dir_names_variable(monkeypatch):
    monkeypatch.delenv("MELSCRIBE_DATA", raising=False)
    with pytest.raises(DataError, match="MELSCRIBE_DATA"):
        load_musiccaps()
    monkeypatch.setenv("MELSCRIBE_DATA", "/nonexistent/melscribe")
    with pytest.raises(DataError, match="/nonexistent/melscribe"):
        load_musiccaps()


def test_unknown_split_and_subset(tmp_path):
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_musiccaps(tmp_path, split="dev")
    with pytest.raises(DataError, match="unknown split 'XYZ'"):
        load_test_split("XYZ", tmp_path)
    with pytest.raises(DataError, match="unknown LP-MusicCaps subset"):
        load_lp_musiccaps("abc", "train", tmp_path)


def test_real_join_row_zero(real_data_dir):
    mc = load_mc_test(real_data_dir)
    assert len(mc) == 2361
    assert mc[0].track_id == "-0Gj8-vB1q4"
    assert mc[0].descriptors == ("low quality", "sustained strings melody", "soft female vocal",
                                 "mellow piano melody", "sad", "soulful", "ballad")
    assert mc[0].text.startswith("This heartfelt ballad showcases")
    reco = load_mc_test(real_data_dir, rephrased=True)
    assert reco[0].track_id == "-0Gj8-vB1q4" and not reco[0].text.startswith('"')
    assert len(load_musiccaps(real_data_dir)) == 5521
    assert len(load_musiccaps(real_data_dir, split="train")) == 2663


def test_export_round_trips_through_the_loader(tmp_path):
    import numpy as np

    from melscribe.data import export_lp_musiccaps

    frame = pd.DataFrame({"track_id": ["t1", "t2"], "tag_top188": [np.array(["guitar", "rock"]), ["piano"]],
                          "caption_writing": ["Rock with guitar.", "Piano."]})
    export_lp_musiccaps("mtt", "train", frame, tmp_path)
    recs = load_lp_musiccaps("mtt", "train", tmp_path)
    assert [r.descriptors for r in recs] == [("guitar", "rock"), ("piano",)]
    with pytest.raises(DataError, match="lacks column"):
        export_lp_musiccaps("msd", "train", frame, tmp_path)
