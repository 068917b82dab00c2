"""VoxCeleb1 preparation on generated data in the real layout (``wav/idXXXXX/<video>/<utt>.wav``).

Authors
 * fastast developers 2026
"""

import importlib.util
import json
import os

import numpy as np
import pytest
import soundfile as sf
from recipe_helpers import RECIPES

from fastast_plugin.data.synthetic import CLASSES, write_voxceleb


@pytest.fixture(scope="module")
def vp():
    """``recipes/VoxCeleb/voxceleb_prepare.py`` as a module."""
    path = RECIPES / "VoxCeleb" / "voxceleb_prepare.py"
    spec = importlib.util.spec_from_file_location("voxceleb_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "voxceleb1"
    splits = write_voxceleb(str(folder), speakers=3, videos_per_speaker=2, utterances_per_video=5)
    return folder, splits


def _load(manifests):
    return {split: json.load(open(path)) for split, path in manifests.items()}


def _split_lines(folder):
    return (folder / "iden_split.txt").read_text().splitlines()


def _write_split_lines(folder, lines):
    (folder / "iden_split.txt").write_text("".join(f"{line}\n" for line in lines))


def test_splits_exactly_as_iden_split_says_with_names(vp, dataset, tmp_path):
    folder, splits = dataset
    # move two utterances to other splits: the manifests must follow the file
    lines = _split_lines(folder)
    moved = {lines[0].split()[1]: "3", lines[1].split()[1]: "2"}
    lines = [f"{moved.get(rel, number)} {rel}" for number, rel in (line.split() for line in lines)]
    _write_split_lines(folder, lines)
    expected = {"train": set(), "valid": set(), "test": set()}
    for line in lines:
        number, rel = line.split()
        expected[{"1": "train", "2": "valid", "3": "test"}[number]].add(rel[: -len(".wav")])
    manifests = vp.prepare_voxceleb(str(folder), str(tmp_path / "save"))
    data = _load(manifests)
    assert {s: set(data[s]) for s in data} == expected
    assert (len(data["train"]), len(data["valid"]), len(data["test"])) == (16, 7, 7)
    meta = {
        line.split("\t")[0]: line.split("\t")
        for line in (folder / "vox1_meta.csv").read_text().splitlines()[1:]
    }
    for entries in data.values():
        for key, entry in entries.items():
            speaker, video, _ = key.split("/")
            assert entry["label"] == entry["speaker"] == speaker
            assert entry["video"] == video
            assert entry["wav"] == os.path.join(folder, "wav", f"{key}.wav")
            assert 1.5 <= entry["duration"] <= 3.0
            assert entry["name"] == meta[speaker][1]
            assert (entry["gender"], entry["nationality"]) == (meta[speaker][2], meta[speaker][3])
    names = {e["name"] for entries in data.values() for e in entries.values()}
    assert names == {f"Generated_{CLASSES[i]}_{i + 1}" for i in range(3)}
    assert open(tmp_path / "save" / "skipped.csv").read().splitlines() == ["path,reason"]


def test_without_meta_names_are_empty_and_unlisted_speakers_warned(vp, dataset, tmp_path, caplog):
    folder, _ = dataset
    meta_lines = (folder / "vox1_meta.csv").read_text().splitlines()
    os.remove(folder / "vox1_meta.csv")
    data = _load(vp.prepare_voxceleb(str(folder), str(tmp_path / "a")))
    assert {e["name"] for entries in data.values() for e in entries.values()} == {""}
    # a meta file (given explicitly) that lacks id10003
    meta = tmp_path / "meta.csv"
    meta.write_text("\n".join(meta_lines[:3]) + "\n")
    with caplog.at_level("WARNING"):
        data = _load(vp.prepare_voxceleb(str(folder), str(tmp_path / "b"), meta_file=str(meta)))
    names = {e["speaker"]: e["name"] for e in data["train"].values()}
    assert names == {"id10001": "Generated_tone_1", "id10002": "Generated_chirp_2", "id10003": ""}
    assert "1 speaker(s) are not in" in caplog.text and "id10003" in caplog.text
    with pytest.raises(FileNotFoundError, match="meta_file .*nope.csv not found"):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "c"), meta_file=str(tmp_path / "nope.csv"))
    meta.write_text("ID\tName\nid10001\tX\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['VoxCeleb1 ID', 'VGGFace1 ID'\]"):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "d"), meta_file=str(meta))


def test_speaker_missing_from_train_raises_naming_it(vp, dataset, tmp_path):
    folder, _ = dataset
    lines = [
        f"3 {rel}" if rel.startswith("id10002/") else f"{number} {rel}"
        for number, rel in (line.split() for line in _split_lines(folder))
    ]
    _write_split_lines(folder, lines)
    error = r"no training utterance in .*iden_split.txt: test: \['id10002'\]"
    with pytest.raises(ValueError, match=error):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "save"))
    assert not os.path.exists(tmp_path / "save" / "train.json")


def test_speaker_left_without_train_by_bad_files_raises(vp, dataset, tmp_path):
    folder, splits = dataset
    for rel in splits["train"]:
        if rel.startswith("id10003/"):
            (folder / "wav" / rel).write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"some training files were skipped.*\['id10003'\]"):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "save"))


def _add_bad_files(folder, splits):
    """One bad file of each kind, in train, valid and test."""
    bad = {
        splits["train"][0]: "missing",
        splits["train"][1]: "unreadable",
        splits["valid"][0]: "empty",
        splits["test"][0]: "2 channels",
        splits["test"][1]: "8000 Hz",
    }
    os.remove(folder / "wav" / splits["train"][0])
    (folder / "wav" / splits["train"][1]).write_bytes(b"RIFF garbage, not a wav file")
    sf.write(str(folder / "wav" / splits["valid"][0]), np.zeros(0), 16000)
    sf.write(str(folder / "wav" / splits["test"][0]), np.zeros((16000, 2)), 16000)
    sf.write(str(folder / "wav" / splits["test"][1]), np.zeros(8000), 8000)
    return bad


def test_missing_and_unreadable_audio_reported_and_skipped(vp, dataset, tmp_path, caplog):
    folder, splits = dataset
    bad = _add_bad_files(folder, splits)
    with caplog.at_level("WARNING"):
        data = _load(vp.prepare_voxceleb(str(folder), str(tmp_path / "save"), strict_audio=True))
    kept = {key for entries in data.values() for key in entries}
    assert not {rel[: -len(".wav")] for rel in bad} & kept
    assert len(kept) == sum(len(files) for files in splits.values()) - len(bad)
    report = (tmp_path / "save" / "skipped.csv").read_text().splitlines()
    assert len(report) == 1 + len(bad)
    for rel, reason in bad.items():
        line = next(line for line in report if rel in line)
        assert line.startswith(os.path.join(folder, "wav", rel)) and reason in line
        assert rel in caplog.text
    assert "Skipping 5 bad audio file(s)" in caplog.text
    with pytest.raises(ValueError, match=r"5 bad audio file\(s\)"):
        vp.prepare_voxceleb(
            str(folder), str(tmp_path / "raise"), on_bad_file="raise", strict_audio=True
        )
    assert not os.path.exists(tmp_path / "raise" / "train.json")


def test_rerun_skips_and_option_change_reprepares(vp, dataset, tmp_path, caplog):
    folder, _ = dataset
    save = str(tmp_path / "save")
    manifests = vp.prepare_voxceleb(str(folder), save)
    stamps = {p: os.stat(p).st_mtime_ns for p in manifests.values()}
    with caplog.at_level("INFO"):
        assert vp.prepare_voxceleb(str(folder), save) == manifests
    assert "already prepared" in caplog.text
    assert {p: os.stat(p).st_mtime_ns for p in manifests.values()} == stamps
    vp.prepare_voxceleb(str(folder), save, on_bad_file="raise")
    assert {p: os.stat(p).st_mtime_ns for p in manifests.values()} != stamps
    assert vp.prepare_voxceleb("/nonexistent", save, skip_prep=True) == manifests


@pytest.mark.parametrize(
    "line,error",
    [
        ("4 id10001/abc/00001.wav", r"line 31: split '4' of id10001/abc/00001.wav must be 1"),
        ("1 id10001/00001.wav", r"line 31: '1 id10001/00001.wav' is not '<split> idXXXXX"),
        ("1 spk1/abc/00001.wav", r"line 31: .* is not '<split> idXXXXX"),
        (None, r"line 31: id10001/.* is listed twice \(first on line 1\)"),
    ],
)
def test_malformed_split_file_names_the_line(vp, dataset, tmp_path, line, error):
    folder, _ = dataset
    lines = _split_lines(folder)
    assert len(lines) == 30
    _write_split_lines(folder, lines + [line or f"2 {lines[0].split()[1]}"])
    with pytest.raises(ValueError, match=error):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "save"))


def test_layout_errors(vp, dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="wav not found: unpack vox1_dev_wav.zip"):
        vp.prepare_voxceleb(str(tmp_path / "empty"), str(tmp_path / "s"))
    folder, _ = dataset
    os.remove(folder / "iden_split.txt")
    with pytest.raises(FileNotFoundError, match="iden_split.txt not found: download"):
        vp.prepare_voxceleb(str(folder), str(tmp_path / "s"))
