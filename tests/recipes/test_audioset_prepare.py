"""AudioSet preparation on generated data in the real layout: segments, labels, naming schemes, reports, AST JSON.

Authors
 * fastast developers 2026
"""

import csv
import importlib.util
import json
import os

import pytest
from recipe_helpers import RECIPES

from fastast_plugin.data.audioset import multilabel_datasets
from fastast_plugin.data.synthetic import write_audioset


@pytest.fixture(scope="module")
def prep():
    spec = importlib.util.spec_from_file_location(
        "audioset_prepare", RECIPES / "AudioSet" / "audioset_prepare.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audioset")
    clips = {"balanced_train": 12, "unbalanced_train": 9, "eval": 9}
    rows = write_audioset(str(folder), clips, duration=0.2, missing=2, unreadable=1)
    return folder, rows


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_balanced_and_full_subsets_hold_exactly_the_segments_with_readable_audio(
    prep, dataset, tmp_path
):
    folder, rows = dataset
    for subset, splits in (
        ("balanced", ["balanced_train"]),
        ("full", ["balanced_train", "unbalanced_train"]),
    ):
        out = prep.prepare_audioset(str(folder), str(tmp_path / subset), subset=subset)
        train = json.load(open(out["train"]))
        expected = {r["ytid"]: r for s in splits for r in rows[s] if r["status"] == "ok"}
        assert set(train) == set(expected)
        for ytid, entry in train.items():
            assert entry["labels"] == expected[ytid]["labels"]
            assert os.path.samefile(entry["wav"], folder / expected[ytid]["path"])
            assert entry["start"] == expected[ytid]["start"]
            assert entry["duration"] == pytest.approx(0.2)
        evaluation = json.load(open(out["eval"]))
        assert set(evaluation) == {r["ytid"] for r in rows["eval"] if r["status"] == "ok"}
    report = json.load(open(out["report"]))
    assert report["train"] == {
        "segments": 21,
        "found": 17,
        "missing": 4,
        "unreadable": 2,
        "clips": 15,
        # found files (readable or not) by scheme: clip n is named by scheme n % 3
        "schemes": {"Y<YTID>_<start>_<end>": 7, "<YTID>": 5, "<YTID>_<start_ms>": 5},
        "sources": ["balanced_train_segments.csv", "unbalanced_train_segments.csv"],
    }
    # every missing segment listed by id and time, every unreadable file by path
    missing = {
        (r["split"], r["ytid"], r["start_seconds"]) for r in read_csv(report["missing_list"])
    }
    assert missing == {
        (split, r["ytid"], f"{r['start']:.3f}")
        for split, sources in (("train", splits), ("eval", ["eval"]))
        for s in sources
        for r in rows[s]
        if r["status"] == "missing"
    }
    skipped = read_csv(report["skipped_list"])
    unreadable = {
        str(folder / r["path"]) for s in rows for r in rows[s] if r["status"] == "unreadable"
    }
    assert {r["path"] for r in skipped} == unreadable and len(unreadable) == 3
    assert all(r["reason"].startswith("unreadable") for r in skipped)


def test_labels_are_mapped_through_class_labels_indices(prep, dataset, tmp_path):
    folder, rows = dataset
    out = prep.prepare_audioset(str(folder), str(tmp_path / "p"))
    # a class index listing the mids in another order: targets follow the file
    mids = [f"/m/0fa{i}" for i in (2, 0, 3, 1)]
    index = tmp_path / "class_labels_indices.csv"
    index.write_text(
        "index,mid,display_name\n" + "".join(f'{i},{m},"C {m}"\n' for i, m in enumerate(mids))
    )
    data = multilabel_datasets({"train": out["train"]}, str(index), 4)["train"]
    with data.output_keys_as(["id", "label_encoded"]):
        for item in data:
            labels = json.load(open(out["train"]))[item["id"]]["labels"]
            assert item["label_encoded"].tolist() == [float(m in labels) for m in mids]
    with pytest.raises(ValueError, match="has 4 classes, but n_classes is 527"):
        multilabel_datasets({"train": out["train"]}, str(index), 527)


def test_a_file_at_another_start_time_does_not_match(prep, tmp_path):
    folder = tmp_path / "as"
    folder.mkdir()
    rows = write_audioset(str(folder), {"balanced_train": 3, "eval": 1}, duration=0.2)
    first = rows["balanced_train"][0]  # Y<YTID>_<start>_<end>.wav: rename to another start
    src = folder / first["path"]
    src.rename(
        src.with_name(f"Y{first['ytid']}_{first['start'] + 1:.3f}_{first['start'] + 11:.3f}.wav")
    )
    out = prep.prepare_audioset(str(folder), str(tmp_path / "p"))
    assert first["ytid"] not in json.load(open(out["train"]))
    (row,) = read_csv(tmp_path / "p" / "missing.csv")
    assert row["ytid"] == first["ytid"] and row["reason"].startswith(
        "files of this YTID start elsewhere"
    )


def test_unknown_labels_and_unreadable_files_with_raise_stop_naming_them(prep, tmp_path):
    folder = tmp_path / "as"
    folder.mkdir()
    write_audioset(str(folder), {"balanced_train": 3, "eval": 2}, duration=0.2, unreadable=1)
    with pytest.raises(ValueError, match=r"2 bad audio file\(s\).*unreadable"):
        prep.prepare_audioset(str(folder), str(tmp_path / "p"), on_bad_file="raise")
    lines = (folder / "eval_segments.csv").read_text().splitlines()
    lines[-1] = lines[-1].replace('"/m/0fa', '"/m/zzz')
    (folder / "eval_segments.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match="labels missing from .*class_labels_indices.csv: {'/m/zzz"
    ):
        prep.prepare_audioset(str(folder), str(tmp_path / "q"))


def test_ast_json_datafiles_are_imported(prep, dataset, tmp_path):
    folder, rows = dataset
    ok = [r for r in rows["balanced_train"] if r["status"] == "ok"]
    items = [{"wav": str(folder / r["path"]), "labels": ",".join(r["labels"])} for r in ok[:4]]
    (folder / "rel").mkdir(exist_ok=True)
    items.append(
        {
            "wav": os.path.relpath(folder / ok[4]["path"], folder / "rel"),
            "labels": ",".join(ok[4]["labels"]),
        }
    )  # relative to the JSON's folder
    items.append(
        {"wav": str(folder / "audio" / "Y00000000000_0.000_10.000.wav"), "labels": "/m/0fa1"}
    )
    (folder / "rel" / "train.json").write_text(json.dumps({"data": items}))
    evals = [
        {"wav": str(folder / r["path"]), "labels": ",".join(r["labels"])}
        for r in rows["eval"]
        if r["status"] == "ok"
    ]
    (folder / "eval.json").write_text(json.dumps({"data": evals}))
    out = prep.prepare_audioset(
        str(folder),
        str(tmp_path / "p"),
        ast_datafiles={
            "train": str(folder / "rel" / "train.json"),
            "eval": str(folder / "eval.json"),
        },
    )
    train = json.load(open(out["train"]))
    assert set(train) == {r["ytid"] for r in ok[:5]}
    assert all(train[r["ytid"]]["labels"] == r["labels"] for r in ok[:5])
    report = json.load(open(out["report"]))
    assert report["train"]["missing"] == 1 and report["train"]["sources"] == ["train.json"]
    assert read_csv(report["missing_list"])[0]["ytid"] == "00000000000"
    bad = folder / "bad.json"
    bad.write_text(json.dumps({"data": [{"wav": "x.wav"}]}))
    with pytest.raises(ValueError, match="bad.json: item 0 needs 'wav' and 'labels'"):
        prep.prepare_audioset(
            str(folder), str(tmp_path / "r"), ast_datafiles={"train": str(bad), "eval": str(bad)}
        )
