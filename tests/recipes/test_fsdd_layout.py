"""``tools/fsdd_layout.py``: FSDD as Speech Commands, read by the recipe's own preparation.

Generated 8 kHz files named as FSDD names them (not the real FSDD: the suite
must not depend on ``../shared``) are laid out by the command line a user
runs, then prepared by ``recipes/SpeechCommands/sc_prepare.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fsdd_layout.py"
SPEAKERS = ("george", "lucas", "theo")
TAKES = 12
DIGITS = (0, 7)


def write_fsdd(folder, takes):
    """2 digits x 3 speakers x ``takes`` takes of 0.3-0.5 s tones at 8 kHz, named as FSDD."""
    rng = np.random.default_rng(0)
    for digit in DIGITS:
        for speaker in SPEAKERS:
            for take in range(takes):
                n = int(rng.integers(2400, 4000))
                tone = 0.5 * np.sin(2 * np.pi * (200 + 50 * digit) * np.arange(n) / 8000)
                sf.write(str(folder / f"{digit}_{speaker}_{take}.wav"), tone, 8000, "PCM_16")
    (folder / "README.md").write_text("not a recording")
    return folder


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory):
    """A tiny FSDD: 2 digits x 3 speakers x 12 takes."""
    return write_fsdd(tmp_path_factory.mktemp("recordings"), TAKES)


@pytest.fixture(scope="module")
def fsdd_all_takes(tmp_path_factory):
    """A tiny FSDD with FSDD's 50 takes (ESC-50 needs all five folds)."""
    return write_fsdd(tmp_path_factory.mktemp("recordings50"), 50)


def lay_out(recordings, out, *args):
    subprocess.run(
        [sys.executable, str(TOOL), str(recordings), str(out), *args],
        check=True,
        capture_output=True,
        text=True,
    )


def read_manifests(manifests):
    return {split: json.loads(Path(path).read_text()) for split, path in manifests.items()}


def test_conventional_split_takes_0_to_4_test(fsdd, tmp_path, sc_prepare):
    lay_out(fsdd, tmp_path / "sc")
    manifests = sc_prepare.prepare_speech_commands(str(tmp_path / "sc"), str(tmp_path / "save"))
    splits = read_manifests(manifests)
    per_split = len(DIGITS) * len(SPEAKERS)
    assert {s: len(e) for s, e in splits.items()} == {
        "train": per_split * (TAKES - 10),
        "valid": per_split * 5,
        "test": per_split * 5,
    }
    takes = {
        split: {int(entry["speaker"].split("-")[1]) for entry in entries.values()}
        for split, entries in splits.items()
    }
    assert takes == {"test": set(range(5)), "valid": set(range(5, 10)), "train": {10, 11}}
    assert {e["label"] for e in splits["test"].values()} == {"zero", "seven"}
    assert {e["speaker"].split("-")[0] for e in splits["test"].values()} == set(SPEAKERS)


def test_resampled_to_16k_as_torchaudio(fsdd, tmp_path):
    lay_out(fsdd, tmp_path / "sc")
    source, rate = sf.read(str(fsdd / "7_lucas_11.wav"), dtype="float32")
    laid, new_rate = sf.read(
        str(tmp_path / "sc" / "seven" / "lucas-11_nohash_0.wav"), dtype="float32"
    )
    assert (rate, new_rate) == (8000, 16000)
    expected = torchaudio.functional.resample(torch.from_numpy(source), 8000, 16000).numpy()
    assert laid.shape == expected.shape == (2 * len(source),)
    np.testing.assert_allclose(laid, expected, atol=1 / 32768)  # PCM-16 rounding


def test_speaker_held_out_split(fsdd, tmp_path, sc_prepare):
    lay_out(
        fsdd,
        tmp_path / "sc",
        "--split",
        "speakers",
        "--valid-speaker",
        "lucas",
        "--test-speaker",
        "theo",
    )
    manifests = sc_prepare.prepare_speech_commands(str(tmp_path / "sc"), str(tmp_path / "save"))
    speakers = {
        split: {entry["speaker"] for entry in entries.values()}
        for split, entries in read_manifests(manifests).items()
    }
    assert speakers == {"train": {"george"}, "valid": {"lucas"}, "test": {"theo"}}


def test_unknown_speaker_is_named(fsdd, tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        lay_out(
            fsdd,
            tmp_path / "sc",
            "--split",
            "speakers",
            "--valid-speaker",
            "lucas",
            "--test-speaker",
            "nobody",
        )
    assert "test_speaker must be one of the speakers" in failed.value.stderr
    assert "'nobody'" in failed.value.stderr


def test_esc50_layout_folds_are_take_groups_read_by_esc50_prepare(
    fsdd_all_takes, tmp_path, esc50_prepare
):
    """``--as esc50``: ESC-50's layout, prepared by the ESC-50 recipe's own preparation."""
    lay_out(fsdd_all_takes, tmp_path / "esc", "--as", "esc50")
    manifests = esc50_prepare.prepare_esc50(
        str(tmp_path / "esc"), str(tmp_path / "save"), str(tmp_path / "audio_16k")
    )
    test = json.loads(Path(manifests[1]["test"]).read_text())
    train = json.loads(Path(manifests[1]["train"]).read_text())
    per_take = len(DIGITS) * len(SPEAKERS)
    assert (len(test), len(train)) == (per_take * 10, per_take * 40)
    assert {int(e["fold"]) for e in test.values()} == {1}
    assert {int(e["fold"]) for e in train.values()} == {2, 3, 4, 5}
    assert {e["label"] for e in test.values()} == {"zero", "seven"}
    assert {e["src_file"] for e in test.values()} == {
        f"{s}{t}" for s in SPEAKERS for t in range(10)
    }
    source, _ = sf.read(str(fsdd_all_takes / "7_lucas_11.wav"), dtype="float32")
    laid, rate = sf.read(str(tmp_path / "esc" / "audio" / "2-lucas11-A-7.wav"), dtype="float32")
    expected = torchaudio.functional.resample(torch.from_numpy(source), 8000, 16000).numpy()
    assert rate == 16000
    np.testing.assert_allclose(laid, expected, atol=1 / 32768)


def test_esc50_layout_refuses_speaker_split(fsdd, tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        lay_out(fsdd, tmp_path / "esc", "--as", "esc50", "--split", "speakers")
    assert "--as esc50 makes 5 folds of takes" in failed.value.stderr
