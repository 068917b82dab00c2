"""Unit tests for fastast_plugin.data.dataio (audio checks, bad files, datasets).

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.crops import crop_length
from fastast_plugin.data.dataio import (
    _audio_pipeline,
    audio_problem,
    classification_datasets,
    fold_path,
    handle_bad_files,
    read_manifest,
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
        '/data/b.wav,"2 channels, expected mono"',
    ]
    with pytest.raises(ValueError, match=r"2 bad audio file\(s\).*a\.wav: empty"):
        handle_bad_files(bad, str(report), on_bad_file="raise")
    assert handle_bad_files({}, str(report)) == set()
    assert report.read_text().splitlines() == ["path,reason"]
    with pytest.raises(ValueError, match="on_bad_file must be one of"):
        handle_bad_files(bad, str(report), on_bad_file="ignore")


def test_audio_pipeline_reads_any_rate_and_channels_as_load_audio(tmp_path):
    paths = _write_bad_files(tmp_path)
    read = _audio_pipeline(16000)
    for name in ("good", "rate", "stereo"):
        torch.testing.assert_close(
            read(paths[name]), load_audio(paths[name], 16000), atol=0, rtol=0
        )
    assert read(paths["rate"]).shape == (1600,)  # 800 samples at 8 kHz


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


def test_read_manifest_fills_placeholders_and_names_bad_files(tmp_path):
    path = tmp_path / "m.json"
    write_manifest({"a": {"wav": "{data_root}/a.wav", "label": "x"}}, str(path))
    assert read_manifest(str(path))["a"]["wav"] == "{data_root}/a.wav"  # read as is
    assert read_manifest(str(path), {"data_root": "/d"})["a"]["wav"] == "/d/a.wav"
    with pytest.raises(FileNotFoundError, match="Manifest not found: .*nope.json"):
        read_manifest(str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_manifest(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json must be a JSON object"):
        read_manifest(str(tmp_path / "list.json"))


def test_fold_path_placeholder_rules():
    assert fold_path("runs/fold_{fold}/m.pt", 2) == "runs/fold_2/m.pt"
    assert fold_path("runs/fold_{fold}/m.pt") == "runs/fold_{fold}/m.pt"
    assert fold_path(None, 2) == "" and fold_path("shared.pt", 2) == "shared.pt"
    with pytest.raises(ValueError, match=r"teacher 'shared.pt' has no \{fold\} placeholder"):
        fold_path("shared.pt", 2, required=True, name="teacher")


def test_fetch_dataset_unpacks_into_a_missing_or_empty_folder_only(tmp_path, monkeypatch):
    import zipfile

    from fastast_plugin.data import dataio

    calls = []

    def fake_download(url, archive, unpack, dest_unpack):  # SpeechBrain's download_file
        calls.append(url)
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("Data-master/meta/index.csv", "x")
        zipfile.ZipFile(archive).extractall(dest_unpack)

    monkeypatch.setattr(dataio, "download_file", fake_download)
    (tmp_path / "empty").mkdir()
    for folder in ("missing", "empty"):
        dataio.fetch_dataset(str(tmp_path / folder), "http://x/a.zip", "X", True, "Data-master")
        assert (tmp_path / folder / "meta" / "index.csv").read_text() == "x"
        assert not (tmp_path / f"{folder}.download").exists()
    dataio.fetch_dataset(str(tmp_path / "missing"), "http://x/a.zip", "X", True)  # has data
    assert len(calls) == 2
    with pytest.raises(FileNotFoundError, match="X not found in .*; unpack http://x/a.zip"):
        dataio.fetch_dataset(str(tmp_path / "other"), "http://x/a.zip", "X")


def test_classification_datasets_crop_per_split(tmp_path):
    path = str(tmp_path / "u.wav")
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 30000).astype(np.float32)
    sf.write(path, audio, 16000, subtype="FLOAT")
    for split in ("train", "test"):
        write_manifest({f"{split}1": {"wav": path, "label": "a"}}, str(tmp_path / f"{split}.json"))
    manifests = {s: str(tmp_path / f"{s}.json") for s in ("train", "test")}
    data, _ = classification_datasets(
        manifests, str(tmp_path / "enc.txt"), 1, crop_frames=128, crops={"test": "centre"}
    )
    assert len(data["train"][0]["sig"]) == 30000  # not listed: the whole file
    sig = data["test"][0]["sig"]
    start = (30000 - 20720) // 2  # the centre crop
    assert len(sig) == crop_length(128) == 20720
    assert torch.equal(sig, torch.from_numpy(audio[start : start + 20720]))
    with pytest.raises(ValueError, match=r"crops name splits \['valid'\] that have no manifest"):
        classification_datasets(
            manifests, str(tmp_path / "e.txt"), 1, crop_frames=128, crops={"valid": "start"}
        )
    with pytest.raises(ValueError, match="crops need crop_frames"):
        classification_datasets(manifests, str(tmp_path / "e.txt"), 1, crops={"test": "start"})
    with pytest.raises(ValueError, match="crop mode of 'test' must be one of"):
        classification_datasets(
            manifests, str(tmp_path / "e.txt"), 1, crop_frames=128, crops={"test": "end"}
        )
