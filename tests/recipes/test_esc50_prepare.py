"""ESC-50 preparation on generated data in the real ``ESC-50-master`` layout.

Authors
 * fastast developers 2026
"""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf

from fastast_plugin.data.synthetic import write_esc50

CATEGORIES = ("dog", "rain", "crackling_fire")


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "ESC-50-master"
    rows = write_esc50(
        str(folder), CATEGORIES, sources_per_fold=2, takes_per_source=2, duration=0.5
    )
    return folder, rows


def _prepare(module, folder, tmp_path, **kwargs):
    return module.prepare_esc50(
        str(folder), str(tmp_path / "prepared"), str(tmp_path / "audio_16k"), **kwargs
    )


def _load(path):
    with open(path) as f:
        return json.load(f)


def _rewrite_meta(folder, rows):
    with open(folder / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_folds_labels_sources_and_resampling(esc50_prepare, dataset, tmp_path):
    folder, rows = dataset
    manifests = _prepare(esc50_prepare, folder, tmp_path)
    assert sorted(manifests) == [1, 2, 3, 4, 5]
    by_name = {row["filename"][:-4]: row for row in rows}
    for fold, files in manifests.items():
        train, test = _load(files["train"]), _load(files["test"])
        assert len(test) == len(rows) // 5 == 12 and len(train) == 48
        assert set(train) | set(test) == set(by_name) and not set(train) & set(test)
        assert {by_name[k]["fold"] for k in test} == {str(fold)}
        assert str(fold) not in {by_name[k]["fold"] for k in train}
        # no source recording on both sides
        assert not {e["src_file"] for e in train.values()} & {e["src_file"] for e in test.values()}
        for key, entry in {**train, **test}.items():
            assert entry["label"] == by_name[key]["category"]
            info = sf.info(entry["wav"])
            assert (info.samplerate, info.frames, info.channels) == (16000, 8000, 1)
            assert entry["wav"].startswith(str(tmp_path / "audio_16k"))
    esc50_prepare.check_no_source_leak(manifests)


def test_resampled_audio_keeps_the_signal(esc50_prepare, dataset, tmp_path):
    folder, rows = dataset
    _prepare(esc50_prepare, folder, tmp_path)
    name = rows[0]["filename"]
    original, rate = sf.read(str(folder / "audio" / name))
    resampled, new_rate = sf.read(str(tmp_path / "audio_16k" / name))
    assert (rate, new_rate) == (44100, 16000)

    # same spectrum below 7 kHz: compare band energies
    def bands(x, sr):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / sr)
        edges = range(0, 7000, 500)
        return np.array([spectrum[(freqs >= lo) & (freqs < lo + 500)].sum() for lo in edges])

    a, b = bands(original, rate), bands(resampled, new_rate) * (rate / new_rate) ** 2
    np.testing.assert_allclose(b / b.sum(), a / a.sum(), atol=0.02)


def test_source_recording_in_two_folds_raises(esc50_prepare, dataset, tmp_path):
    folder, rows = dataset
    leaked = dict(rows[-1], src_file=rows[0]["src_file"])  # fold 5 clip, fold 1 source
    _rewrite_meta(folder, rows[:-1] + [leaked])
    with pytest.raises(ValueError, match=f"'{rows[0]['src_file']}': \\[1, 5\\]"):
        _prepare(esc50_prepare, folder, tmp_path)


def test_bad_files_skipped_reported_or_raised(esc50_prepare, dataset, tmp_path, caplog):
    folder, rows = dataset
    audio = folder / "audio"
    bad = {
        rows[0]["filename"]: "empty",
        rows[1]["filename"]: "unreadable",
        rows[2]["filename"]: "2 channels",
        rows[3]["filename"]: "22050 Hz",
        rows[4]["filename"]: "missing",
    }
    sf.write(str(audio / rows[0]["filename"]), np.zeros(0), 44100)
    (audio / rows[1]["filename"]).write_bytes(b"\x00" * 100)
    sf.write(str(audio / rows[2]["filename"]), np.zeros((4410, 2)), 44100)
    sf.write(str(audio / rows[3]["filename"]), np.zeros(2205), 22050)
    os.remove(audio / rows[4]["filename"])
    with pytest.raises(ValueError, match=rf"5 bad audio file\(s\).*{rows[0]['filename']}: empty"):
        _prepare(esc50_prepare, folder, tmp_path, on_bad_file="raise", strict_audio=True)
    with caplog.at_level("WARNING"):
        manifests = _prepare(esc50_prepare, folder, tmp_path, strict_audio=True)
    kept = {k for files in manifests.values() for k in _load(files["test"])}
    assert len(kept) == len(rows) - 5
    report = open(tmp_path / "prepared" / "skipped.csv").read().splitlines()
    assert len(report) == 6
    for name, reason in bad.items():
        assert name[:-4] not in kept
        assert any(name in line and reason in line for line in report)
        assert name in caplog.text


def test_rerun_skips_and_cache_is_reused(esc50_prepare, dataset, tmp_path, caplog):
    folder, rows = dataset
    manifests = _prepare(esc50_prepare, folder, tmp_path)
    cached = tmp_path / "audio_16k" / rows[0]["filename"]
    stamp = os.stat(cached).st_mtime_ns
    with caplog.at_level("INFO"):
        assert _prepare(esc50_prepare, folder, tmp_path) == manifests
    assert "already prepared" in caplog.text
    # a manifest lost: everything written again, the resampled audio reused
    os.remove(tmp_path / "prepared" / "fold3_train.json")
    _prepare(esc50_prepare, folder, tmp_path)
    assert os.path.exists(tmp_path / "prepared" / "fold3_train.json")
    assert os.stat(cached).st_mtime_ns == stamp


def test_meta_errors(esc50_prepare, dataset, tmp_path):
    folder, rows = dataset
    with pytest.raises(FileNotFoundError, match="set download: True"):
        _prepare(esc50_prepare, tmp_path / "nothing", tmp_path)
    _rewrite_meta(folder, [{k: v for k, v in r.items() if k != "src_file"} for r in rows])
    with pytest.raises(ValueError, match=r"lacks columns \['src_file'\]"):
        _prepare(esc50_prepare, folder, tmp_path)
    _rewrite_meta(folder, [r for r in rows if r["fold"] != "4"])
    with pytest.raises(ValueError, match=r"has folds \[1, 2, 3, 5\]"):
        _prepare(esc50_prepare, folder, tmp_path)
