"""Speech Commands preparation on generated data in the real ``speech_commands_v0.02`` layout.

Authors
 * fastast developers 2026
"""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from fastast_plugin.data.synthetic import write_speech_commands

WORDS = ("yes", "no", "up")


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "speech_commands_v0.02"
    splits = write_speech_commands(str(folder), WORDS, speakers=10, clips_per_speaker=2)
    return folder, splits


def _load(manifests):
    return {split: json.load(open(path)) for split, path in manifests.items()}


def test_splits_labels_and_speakers(sc_prepare, dataset, tmp_path):
    folder, splits = dataset
    manifests = sc_prepare.prepare_speech_commands(str(folder), str(tmp_path / "save"))
    data = _load(manifests)
    # every generated file in its split, nothing else (no _background_noise_)
    for split, files in splits.items():
        assert sorted(f"{key}.wav" for key in data[split]) == files
    assert {len(data[s]) for s in data} == {len(splits[s]) for s in splits}
    assert (len(data["train"]), len(data["valid"]), len(data["test"])) == (36, 12, 12)
    for entries in data.values():
        for key, entry in entries.items():
            word, name = key.split("/")
            assert entry["label"] == word and entry["speaker"] == name.split("_nohash_")[0]
            assert entry["wav"] == os.path.join(folder, f"{key}.wav")
            assert 0.7 <= entry["duration"] <= 1.0
    speakers = {s: {e["speaker"] for e in data[s].values()} for s in data}
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    assert open(tmp_path / "save" / "skipped.csv").read().splitlines() == ["path,reason"]


def test_rerun_skips_and_option_change_reprepares(sc_prepare, dataset, tmp_path, caplog):
    folder, _ = dataset
    save = str(tmp_path / "save")
    manifests = sc_prepare.prepare_speech_commands(str(folder), save)
    stamps = {p: os.stat(p).st_mtime_ns for p in manifests.values()}
    # a file added after preparation is not picked up: the preparation is skipped
    sf.write(str(folder / "yes" / "ffffffff_nohash_0.wav"), np.zeros(16000), 16000)
    with caplog.at_level("INFO"):
        again = sc_prepare.prepare_speech_commands(str(folder), save)
    assert again == manifests
    assert "already prepared" in caplog.text
    assert {p: os.stat(p).st_mtime_ns for p in manifests.values()} == stamps
    assert "yes/ffffffff_nohash_0" not in _load(manifests)["train"]
    # other options: prepared again, the new file now in train
    sc_prepare.prepare_speech_commands(str(folder), save, on_bad_file="raise")
    assert "yes/ffffffff_nohash_0" in _load(manifests)["train"]
    # skip_prep only returns the paths
    assert sc_prepare.prepare_speech_commands("/nonexistent", save, skip_prep=True) == manifests


def _add_bad_files(folder, splits):
    """One bad file of each kind: in train, in the validation list, in the test list."""
    bad = {
        "yes/badbad01_nohash_0.wav": "empty",
        "no/badbad02_nohash_0.wav": "unreadable",
        "up/badbad03_nohash_0.wav": "2 channels",
        "yes/badbad04_nohash_0.wav": "8000 Hz",
        "no/badbad05_nohash_0.wav": "missing",
    }
    sf.write(str(folder / "yes/badbad01_nohash_0.wav"), np.zeros(0), 16000)
    (folder / "no/badbad02_nohash_0.wav").write_bytes(b"not a wav file at all")
    sf.write(str(folder / "up/badbad03_nohash_0.wav"), np.zeros((16000, 2)), 16000)
    sf.write(str(folder / "yes/badbad04_nohash_0.wav"), np.zeros(8000), 8000)
    with open(folder / "validation_list.txt", "a") as f:
        f.write("no/badbad02_nohash_0.wav\nno/badbad05_nohash_0.wav\n")
    with open(folder / "testing_list.txt", "a") as f:
        f.write("up/badbad03_nohash_0.wav\n")
    return bad


def test_bad_files_skipped_and_reported_by_name(sc_prepare, dataset, tmp_path, caplog):
    folder, splits = dataset
    bad = _add_bad_files(folder, splits)
    with caplog.at_level("WARNING"):
        manifests = sc_prepare.prepare_speech_commands(
            str(folder), str(tmp_path / "save"), strict_audio=True
        )
    data = _load(manifests)
    kept = {key for entries in data.values() for key in entries}
    assert not {name[: -len(".wav")] for name in bad} & kept
    assert len(kept) == sum(len(files) for files in splits.values())
    report = open(tmp_path / "save" / "skipped.csv").read()
    for name, reason in bad.items():
        line = next(line for line in report.splitlines() if name in line)
        assert reason in line
        assert name in caplog.text
    assert "Skipping 5 bad audio file(s)" in caplog.text


def test_bad_files_raise_when_asked(sc_prepare, dataset, tmp_path):
    folder, splits = dataset
    _add_bad_files(folder, splits)
    with pytest.raises(ValueError, match=r"5 bad audio file\(s\).*badbad01_nohash_0.wav: empty"):
        sc_prepare.prepare_speech_commands(
            str(folder), str(tmp_path / "save"), on_bad_file="raise", strict_audio=True
        )
    assert not os.path.exists(tmp_path / "save" / "train.json")


def test_speaker_in_two_splits_raises(sc_prepare, dataset, tmp_path, caplog):
    folder, splits = dataset
    leaked = splits["train"][0]  # a train speaker's file moved into the test list
    with open(folder / "testing_list.txt", "a") as f:
        f.write(leaked + "\n")
    speaker = os.path.basename(leaked).split("_nohash_")[0]
    with pytest.raises(ValueError, match=f"train/test: \\['{speaker}'\\]"):
        sc_prepare.prepare_speech_commands(str(folder), str(tmp_path / "save"))
    with caplog.at_level("WARNING"):
        manifests = sc_prepare.prepare_speech_commands(
            str(folder), str(tmp_path / "save"), check_speakers=False
        )
    assert leaked[: -len(".wav")] in _load(manifests)["test"]
    assert speaker in caplog.text


def test_layout_errors(sc_prepare, dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="set download: True"):
        sc_prepare.prepare_speech_commands(
            str(tmp_path / "empty"), str(tmp_path / "s"), download=False
        )
    folder, _ = dataset
    os.remove(folder / "testing_list.txt")
    with pytest.raises(FileNotFoundError, match="testing_list.txt not found"):
        sc_prepare.prepare_speech_commands(str(folder), str(tmp_path / "s"))
