"""Safe state-dict reading and strict checking (fastast_plugin.weights.state_dict)."""

import argparse
import os

import pytest
import torch

from fastast_plugin.weights.state_dict import (
    CheckpointError,
    CheckpointMismatchError,
    _check_state_dict,
    load_strict,
    read_state_dict,
)


def test_random_bytes_are_not_a_torch_checkpoint(tmp_path):
    """torch.load reports random bytes as UnpicklingError, IndexError,
    KeyError, ...; the message must say what the file is not."""
    rng = torch.Generator().manual_seed(0)
    for i in range(20):
        path = tmp_path / f"noise{i}.pth"
        path.write_bytes(bytes(torch.randint(0, 256, (512,), generator=rng).tolist()))
        with pytest.raises(CheckpointError, match="is not a torch checkpoint") as err:
            read_state_dict(path)
        assert str(path) in str(err.value) and "pickled objects" not in str(err.value)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="is not a torch checkpoint"):
        read_state_dict(text)


def test_truncated_checkpoint_is_not_a_torch_checkpoint(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="is not a torch checkpoint"):
        read_state_dict(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pickled_objects_are_refused(tmp_path, legacy):
    path = tmp_path / "obj.pth"
    payload = {"w": torch.ones(1), "args": argparse.Namespace(lr=0.1)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError, match="holds pickled objects") as err:
        read_state_dict(path)
    assert "weights_only=True" in str(err.value) and str(path) in str(err.value)
    assert "argparse.Namespace" in str(err.value)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"model": 3}, r"key 'model' holds int 3, expected a tensor"),
        ({"w": torch.ones(1), "epoch": 7}, r"key 'epoch' holds int"),
        ([torch.ones(1)], r"holds list .*expected a non-empty state dict"),
        ({}, r"holds dict \{\}"),
    ],
    ids=["value", "mixed", "list", "empty"],
)
def test_non_tensor_content_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")


def test_safetensors_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.arange(3.0)}, path)
    assert torch.equal(read_state_dict(path)["a"], torch.arange(3.0))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_state_dict(broken)


@pytest.mark.parametrize(
    "nest",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd},
        lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
        lambda sd: {"state_dict": {"model": sd}},
    ],
    ids=["flat", "state_dict", "model", "both"],
)
def test_usual_nesting_is_unwrapped(tmp_path, nest):
    sd = {"w": torch.ones(2), "b": torch.zeros(1)}
    path = tmp_path / "nested.pth"
    torch.save(nest(sd), path)
    out = read_state_dict(path)
    assert sorted(out) == ["b", "w"] and torch.equal(out["w"], sd["w"])


def test_mismatch_message_lists_every_problem():
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    sd = {
        "0.weight": torch.zeros(2, 4),
        "0.bias": torch.zeros(2),
        "1.weight": torch.zeros(2),
        "extra": torch.zeros(1),
    }
    with pytest.raises(CheckpointMismatchError) as err:
        _check_state_dict(sd, module, "ckpt.pth")
    assert str(err.value) == (
        "Cannot load ckpt.pth into Sequential:\n"
        "  missing keys: 1.bias\n"
        "  unexpected keys: extra\n"
        "  shape mismatches: 0.weight: checkpoint (2, 4) vs model (2, 3)"
    )
    assert isinstance(err.value, CheckpointError) and isinstance(err.value, ValueError)


def test_long_key_lists_are_shortened():
    module = torch.nn.Sequential(*[torch.nn.Linear(1, 1) for _ in range(8)])
    with pytest.raises(CheckpointMismatchError, match=r"\.\.\. and 6 more$"):
        _check_state_dict({}, module)


def test_load_strict_checks_then_loads():
    linear = torch.nn.Linear(2, 1)
    good = {"weight": torch.ones(1, 2), "bias": torch.full((1,), 3.0)}
    assert load_strict(linear, good, "x.pth") is linear
    assert torch.equal(linear.bias, good["bias"])
    before = linear.weight.detach().clone()
    with pytest.raises(CheckpointMismatchError, match="x.pth into Linear"):
        load_strict(linear, {"weight": torch.zeros(1, 2)}, "x.pth")
    assert torch.equal(linear.weight, before)  # nothing loaded on a mismatch
