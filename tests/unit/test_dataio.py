"""Unit tests for fastast_plugin.dataio (audio checks, bad files, datasets, sharding).

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import soundfile as sf

from fastast_plugin.dataio import (
    EvalShardSampler,
    audio_pipeline,
    audio_problem,
    classification_datasets,
    handle_bad_files,
    write_manifest,
)


def _write_bad_files(folder):
    files = {
        "good": (np.zeros(1600), 16000),
        "stereo": (np.zeros((1600, 2)), 16000),
        "rate": (np.zeros(800), 8000),
        "empty_header": (np.zeros(0), 16000),
    }
    paths = {}
    for name, (audio, rate) in files.items():
        paths[name] = str(folder / f"{name}.wav")
        sf.write(paths[name], audio, rate)
    paths["zero_bytes"] = str(folder / "zero_bytes.wav")
    open(paths["zero_bytes"], "wb").close()
    paths["corrupt"] = str(folder / "corrupt.wav")
    with open(paths["corrupt"], "wb") as f:
        f.write(b"RIFF\x00\x01garbage" * 10)
    paths["missing"] = str(folder / "missing.wav")
    return paths


def test_audio_problem_names_each_defect(tmp_path):
    paths = _write_bad_files(tmp_path)
    problems = {name: audio_problem(path, 16000) for name, path in paths.items()}
    assert problems["good"] is None
    assert problems["stereo"] == "2 channels, expected mono"
    assert problems["rate"] == "8000 Hz, expected 16000 Hz"
    assert problems["empty_header"] == "empty"
    assert problems["zero_bytes"].startswith("unreadable")
    assert problems["corrupt"].startswith("unreadable")
    assert problems["missing"] == "missing"
    assert audio_problem(paths["rate"]) is None  # no expected rate given


def test_bad_files_are_reported_then_skipped_or_raised(tmp_path, caplog):
    bad = {"/data/a.wav": "empty", "/data/b.wav": "2 channels, expected mono"}
    report = tmp_path / "skipped.csv"
    with caplog.at_level("WARNING"):
        assert handle_bad_files(bad, str(report)) == set(bad)
    assert "/data/a.wav: empty" in caplog.text and "/data/b.wav" in caplog.text
    assert report.read_text().splitlines() == [
        "path,reason",
        "/data/a.wav,empty",
        "/data/b.wav,\"2 channels, expected mono\"",
    ]
    with pytest.raises(ValueError, match=r"2 bad audio file\(s\).*a\.wav: empty"):
        handle_bad_files(bad, str(report), on_bad_file="raise")
    assert handle_bad_files({}, str(report)) == set()
    assert report.read_text().splitlines() == ["path,reason"]
    with pytest.raises(ValueError, match="on_bad_file must be one of"):
        handle_bad_files(bad, str(report), on_bad_file="ignore")


def test_audio_pipeline_rejects_wrong_rate_and_channels(tmp_path):
    paths = _write_bad_files(tmp_path)
    read = audio_pipeline(16000)
    assert read(paths["good"]).shape == (1600,)
    with pytest.raises(ValueError, match="rate.wav: sampled at 8000 Hz"):
        read(paths["rate"])
    with pytest.raises(ValueError, match="stereo.wav: 2 channels"):
        read(paths["stereo"])


def test_classification_datasets_checks_classes(tmp_path):
    sf.write(str(tmp_path / "a.wav"), np.zeros(1600), 16000)
    wav = str(tmp_path / "a.wav")
    train = {f"c{i}": {"wav": wav, "label": label} for i, label in enumerate("bacb")}
    write_manifest(train, str(tmp_path / "train.json"))
    write_manifest({"x": {"wav": wav, "label": "z"}}, str(tmp_path / "test.json"))
    manifests = {"train": str(tmp_path / "train.json")}
    with pytest.raises(ValueError, match="has 3 classes.*n_classes is 35"):
        classification_datasets(manifests, str(tmp_path / "enc.txt"), 35)
    data, encoder = classification_datasets(manifests, str(tmp_path / "enc.txt"), 3)
    assert [encoder.lab2ind[c] for c in "abc"] == [0, 1, 2]  # sorted labels
    assert [int(item["label_encoded"]) for item in data["train"]] == [1, 0, 2, 1]
    manifests["test"] = str(tmp_path / "test.json")
    absent = r"test.json has labels absent from the training set: \['z'\]"
    with pytest.raises(ValueError, match=absent):
        classification_datasets(manifests, str(tmp_path / "enc2.txt"), 3)


@pytest.mark.parametrize("num_items,world_size", [(9, 2), (10, 3), (2, 4), (0, 2)])
def test_eval_shards_cover_every_item_exactly_once(num_items, world_size):
    shards = [list(EvalShardSampler(num_items, rank, world_size)) for rank in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(num_items))
    assert [len(EvalShardSampler(num_items, r, world_size)) for r in range(world_size)] == [
        len(shard) for shard in shards
    ]
    with pytest.raises(ValueError, match="rank must be in"):
        EvalShardSampler(num_items, world_size, world_size)
