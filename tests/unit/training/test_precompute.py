"""Precomputing teacher logits: round trip through the store, batching, errors, the CLI.

Authors
 * fastast developers 2026
"""

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.training.losses import MultiLabelKDLoss
from fastast_plugin.training.precompute import _precompute_teacher_logits, main
from fastast_plugin.training.teachers import LogitsStore, OnlineTeacher, build_dymn_teacher


# ---------------------------------------------------------------------------
# Precomputed store
# ---------------------------------------------------------------------------
class ClipStats(nn.Module):
    """Stand-in teacher on waveforms; its output depends on padding, so batching matters."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, wavs):
        feats = torch.stack(
            [wavs.mean(1), wavs.std(1), wavs.abs().mean(1), wavs.shape[1] / 1000 + 0 * wavs[:, 0]],
            dim=1,
        )
        return self.linear(feats)


@pytest.fixture
def clips(tmp_path):
    """Five 16 kHz clips of three lengths and a manifest (with a start/stop entry)."""
    rng = np.random.default_rng(0)
    lengths = {"a": 1600, "b": 1600, "c": 2400, "d": 1600, "e": 800}
    sigs = {}
    for name, n in lengths.items():
        sigs[name] = (0.3 * rng.standard_normal(n)).astype(np.float32)
        sf.write(tmp_path / f"{name}.wav", sigs[name], 16000, subtype="FLOAT")
    manifest = {k: {"wav": str(tmp_path / f"{k}.wav"), "label": "x"} for k in lengths}
    manifest["f"] = {"wav": {"file": str(tmp_path / "c.wav"), "start": 800, "stop": 2400}}
    sigs["f"] = sigs["c"][800:2400]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(manifest))
    return path, sigs


def alone(teacher, sig):
    """The teacher on one clip, batch of one."""
    return teacher(torch.from_numpy(sig)[None])[0][0]


def test_precompute_round_trip(tmp_path, clips, caplog):
    manifest, sigs = clips
    torch.manual_seed(0)
    teacher = OnlineTeacher(ClipStats())
    store = _precompute_teacher_logits(
        teacher, str(manifest), tmp_path / "store", batch_size=2, sample_rate=16000, dtype="float32"
    )
    assert isinstance(store.logits, np.memmap) and store.logits.dtype == np.float32
    assert store.index == {k: i for i, k in enumerate("abcdef")}  # manifest order
    for name, sig in sigs.items():  # every clip as if alone: no padding by other clips
        row = torch.from_numpy(np.array(store.logits[store.index[name]]))
        assert torch.allclose(row, alone(teacher, sig), atol=1e-6), name
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert meta["n_clips"] == 6 and meta["num_classes"] == 3

    with caplog.at_level(logging.WARNING, logger="fastast_plugin.training.teachers"):
        logits, mask = store(torch.zeros(3, 10), None, ["c", "zz", "a"])
    assert mask.tolist() == [True, False, True]
    assert torch.equal(logits[1], torch.zeros(3))
    assert torch.allclose(logits[0], alone(teacher, sigs["c"]), atol=1e-6)
    assert (store.n_missing, store.n_lookups, store.missing_ids) == (1, 3, {"zz"})
    assert "zz" in caplog.text and "no teacher logits" in caplog.text
    store.reset_counts()
    assert store.n_missing == 0

    # The loss of a store lookup: the missing clip gets no KD term.
    loss_fn = MultiLabelKDLoss()
    assert loss_fn(torch.zeros(3, 3), torch.zeros(3, 3), logits, mask).n_missing == 1


def test_precompute_float16_and_fixed_clip_length(tmp_path, clips):
    manifest, sigs = clips
    torch.manual_seed(0)
    teacher = OnlineTeacher(ClipStats())
    store = _precompute_teacher_logits(
        teacher,
        str(manifest),
        tmp_path / "s16",
        batch_size=4,
        sample_rate=16000,
        clip_seconds=0.125,
    )
    assert store.logits.dtype == np.float16
    for name, sig in sigs.items():
        fixed = np.pad(sig, (0, max(0, 2000 - len(sig))))[:2000]
        row = torch.from_numpy(np.asarray(store.logits[store.index[name]], dtype=np.float32))
        assert torch.allclose(row, alone(teacher, fixed), rtol=2e-3, atol=2e-3), name


def test_precompute_errors(tmp_path, clips):
    manifest, _ = clips
    teacher = OnlineTeacher(ClipStats())
    with pytest.raises(ValueError, match="'a'.*16000 Hz, expected 8000 Hz"):
        _precompute_teacher_logits(teacher, str(manifest), tmp_path / "x", sample_rate=8000)
    bad = {"gone": {"wav": str(tmp_path / "gone.wav")}}
    with pytest.raises(ValueError, match="'gone'.*missing"):
        _precompute_teacher_logits(teacher, bad, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        _precompute_teacher_logits(teacher, str(tmp_path / "nope.json"), tmp_path / "x")
    with pytest.raises(ValueError, match="clip_seconds"):
        _precompute_teacher_logits(teacher, str(manifest), tmp_path / "x", clip_seconds=1.0)


# ---------------------------------------------------------------------------
# DyMN teacher and the command line
# ---------------------------------------------------------------------------
def test_cli_precompute_with_a_dymn_teacher(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "teacher.pt"
    torch.save(DyMN(num_classes=4, width_mult=0.4).state_dict(), weights)
    rng = np.random.default_rng(1)
    sigs = {k: (0.1 * rng.standard_normal(4000)).astype(np.float32) for k in ("x", "y")}
    for k, sig in sigs.items():
        sf.write(tmp_path / f"{k}.wav", sig, 16000, subtype="FLOAT")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({k: {"wav": str(tmp_path / f"{k}.wav")} for k in sigs}))
    args = [
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "kd"),
        "--weights",
        str(weights),
        "--width-mult",
        "0.4",
        "--store-dtype",
        "float32",
    ]
    store = main(args + ["--num-classes", "4"])
    assert store.logits.dtype == np.float32
    teacher = build_dymn_teacher(weights=weights, width_mult=0.4, sample_rate=16000)
    expected, mask = teacher(torch.from_numpy(np.stack([sigs["x"], sigs["y"]])))
    got, got_mask = LogitsStore(tmp_path / "kd", num_classes=4)(None, None, ["x", "y"])
    assert torch.allclose(got, expected, atol=1e-5) and got_mask.all()
    assert store.num_classes == 4

    with pytest.raises(
        ValueError, match="teacher.pt' has 4 classes, but the student predicts num_classes=5"
    ):
        main(args + ["--num-classes", "5"])
