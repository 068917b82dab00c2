"""Unit tests for EfficientAT's DyMN weights (``fastast_plugin.models.dymn.weights``).

Files are written with random tensors in EfficientAT's layout
(``dymn_layout.py``, from EfficientAT's ``models/dymn/model.py``,
https://github.com/fschmid56/EfficientAT); nothing is downloaded.

Authors
 * fastast developers 2026
"""

import logging
import os
import re

import pytest
import torch
from dymn_layout import fake_state_dict

from fastast_plugin.weights.state_dict import CheckpointError, CheckpointMismatchError


class Payload:
    """A pickled non-tensor object that weights_only loading must refuse."""


def test_checkpoint_registry():
    from fastast_plugin.models.dymn.weights import _DYMN_BASE_URL, _DYMN_CHECKPOINTS

    assert _DYMN_BASE_URL == "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
    assert _DYMN_CHECKPOINTS["dymn04_as"] == "dymn04_as.pt"
    assert _DYMN_CHECKPOINTS["dymn10_as"] == "dymn10_as.pt"
    assert _DYMN_CHECKPOINTS["dymn20_as"] == "dymn20_as_mAP_493.pt"
    assert _DYMN_CHECKPOINTS["dymn10_im"] == "dymn10_im.pt"
    assert all(not f.startswith(" ") for f in _DYMN_CHECKPOINTS.values())


def test_load_by_name(tmp_path):
    from fastast_plugin.models.dymn.weights import load_dymn

    state = fake_state_dict(0.4)
    torch.save(state, tmp_path / "dymn04_as.pt")
    model = load_dymn("dymn04_as", tmp_path)
    assert model.width_mult == 0.4 and model.num_classes == 527
    assert model.temperature == 1.0
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    # ImageNet weights were trained to a final temperature of 30.
    torch.save(state, tmp_path / "dymn04_im.pt")
    assert load_dymn("dymn04_im", tmp_path).temperature == 30.0
    assert load_dymn("dymn04_im", tmp_path, temperature=2.0).temperature == 2.0


def test_num_classes_mismatch_drops_head(tmp_path, caplog):
    from fastast_plugin.models.dymn.weights import load_dymn

    state = fake_state_dict(0.4)
    torch.save(state, tmp_path / "dymn04_as.pt")
    with caplog.at_level(logging.INFO, logger="fastast_plugin.models.dymn.weights"):
        model = load_dymn("dymn04_as", tmp_path, num_classes=50)
    assert "classifier" in caplog.text and "527" in caplog.text
    loaded = model.state_dict()
    assert loaded["classifier.5.weight"].shape == (50, 512)
    assert loaded["classifier.5.bias"].abs().sum() == 0  # fresh head
    for key, value in state.items():
        if not key.startswith("classifier.5."):
            assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 128, 32)).shape == (2, 50)


def test_load_file_checks_the_class_count(tmp_path):
    from fastast_plugin.models.dymn.weights import _check_num_classes, load_dymn_file

    path = tmp_path / "teacher.pt"
    state = fake_state_dict(0.4, num_classes=7)
    torch.save(state, path)
    model = load_dymn_file(path, width_mult=0.4)
    assert model.num_classes == 7 and model.temperature == 1.0
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert load_dymn_file(path, width_mult=0.4, num_classes=7).num_classes == 7

    message = f"{path} has 7 classes (classifier.5.weight (7, 512)), but num_classes=5"
    with pytest.raises(CheckpointMismatchError, match=re.escape(message)):
        load_dymn_file(path, width_mult=0.4, num_classes=5)
    with pytest.raises(CheckpointMismatchError, match="t.pt has 7 classes"):
        _check_num_classes(state, 5, "t.pt")
    assert load_dymn_file(path, 0.4, num_classes=5, allow_new_head=True).num_classes == 5

    del state["classifier.5.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match="no 2-D 'classifier.5.weight'"):
        load_dymn_file(path, width_mult=0.4)


def test_missing_file_and_download(tmp_path, monkeypatch):
    from fastast_plugin.models.dymn import weights as dymn_weights

    with pytest.raises(FileNotFoundError, match="dymn20_as_mAP_493.pt"):
        dymn_weights.load_dymn("dymn20_as", tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        dymn_weights.load_dymn("dymn30_as", tmp_path)

    calls = []

    def fake_download(url, dst):  # the registry's resumable, checked download
        calls.append(url)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        torch.save(fake_state_dict(0.4), dst)

    monkeypatch.setattr(dymn_weights, "download_file", fake_download)
    model = dymn_weights.load_dymn("dymn04_as", tmp_path / "new", download=True)
    assert calls == [dymn_weights._DYMN_BASE_URL + "dymn04_as.pt"]
    assert model.num_classes == 527
    # Present files are never downloaded again.
    dymn_weights.load_dymn("dymn04_as", tmp_path / "new", download=True)
    assert len(calls) == 1


def test_bad_checkpoints_give_clear_errors(tmp_path):
    from fastast_plugin.models.dymn.model import DyMN
    from fastast_plugin.models.dymn.weights import _load_dymn_state_dict, load_dymn

    state = fake_state_dict(0.4)
    path = tmp_path / "dymn04_as.pt"

    broken = dict(state)
    del broken["layers.5.depth_conv.weight"]
    torch.save(broken, path)
    with pytest.raises(
        CheckpointMismatchError, match=r"missing keys: layers\.5\.depth_conv\.weight"
    ):
        load_dymn("dymn04_as", tmp_path)

    broken = dict(state)
    broken["layers.7.proj_conv.weight"] = torch.zeros(1, 1, 4, 7)
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_dymn("dymn04_as", tmp_path)
    expected = "layers.7.proj_conv.weight: checkpoint (1, 1, 4, 7) vs model (1, 1, 4, 2560)"
    assert expected in str(err.value)
    assert "unexpected keys: extra.weight" in str(err.value)
    assert str(path) in str(err.value) and "DyMN" in str(err.value)

    torch.save({"in_c.0.weight": Payload()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_dymn("dymn04_as", tmp_path)

    torch.save({**state, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="'epoch'"):
        load_dymn("dymn04_as", tmp_path)

    path.write_bytes(b"\x13\x37" * 64)
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_dymn("dymn04_as", tmp_path)

    # A dymn10 file under a dymn04 model: every mismatch is reported.
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        _load_dymn_state_dict(DyMN(width_mult=0.4), fake_state_dict(1.0))
    # Without allow_new_head a different class count is an error too.
    with pytest.raises(CheckpointMismatchError, match="classifier.5.weight"):
        _load_dymn_state_dict(DyMN(width_mult=0.4, num_classes=10), state)


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    from fastast_plugin.models.dymn.weights import load_dymn_file

    state = fake_state_dict(0.4, num_classes=3)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "t.safetensors")
    model = load_dymn_file(tmp_path / "t.safetensors", width_mult=0.4)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
