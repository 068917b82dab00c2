"""Unit tests for fastast_plugin.training.recipe: command line, DDP group, model file, patch-size sweep.

``run_experiment`` itself trains, so it is tested in
``tests/integration/test_training.py`` and through the recipes.

Authors
 * fastast developers 2026
"""

import socket

import pytest
import speechbrain as sb
import torch

from fastast_plugin.data.dataio import write_manifest
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.training.recipe import (
    _sweep_patch_sizes,
    _write_model_file,
    ddp_group,
    parse_arguments,
    prepare_and_load,
)


def test_parse_arguments_keeps_short_yaml_keys():
    _, run_opts, overrides = parse_arguments(
        ["x.yaml", "--r=16", "--de", "3", "--debug", "--device=cpu"]
    )
    assert overrides.splitlines() == ["r: 16", "de: 3"]
    assert run_opts.debug and run_opts.device == "cpu"
    with pytest.raises(ValueError, match="--r needs a value"):
        parse_arguments(["x.yaml", "--r"])


def test_model_file_gives_the_same_logits_through_from_pretrained(device, tmp_path, tiny_brain):
    brain = tiny_brain(device)
    path = tmp_path / "sub" / "model.pt"
    _write_model_file(brain, str(path))
    assert not (tmp_path / "sub" / "model.pt.partial").exists()
    model = from_pretrained(path, input_tdim=32, fstride=16, tstride=16).to(device)
    feats = torch.randn(2, 32, 128, device=device)
    brain.modules.eval()
    with torch.no_grad():
        ours = brain.modules.classifier(brain.modules.embedding_model(feats)).squeeze(1)
        torch.testing.assert_close(model(feats), ours)


def test_sweep_rows_per_size_in_order_and_patch_size_restored(
    device, tmp_path, tiny_brain, clip_dataset
):
    brain = tiny_brain(device, flexible="both")
    brain.modules.embedding_model.set_patch_size(32)
    rows = _sweep_patch_sizes(
        brain,
        clip_dataset(6),
        ["16x32", 16, [32, 16]],
        str(tmp_path / "sweep"),
        test_loader_kwargs={"batch_size": 4},
    )
    assert [row["patch_size"] for row in rows] == ["16x32", "16", "32x16"]
    assert all(row["clips"] == 6 for row in rows)
    assert brain.modules.embedding_model.patch_size == (32, 32)
    assert (tmp_path / "sweep.csv").read_text().startswith("patch_size,")


def test_sweep_refuses_other_sizes_on_a_fixed_patch_encoder(tiny_brain, clip_dataset):
    brain = tiny_brain("cpu")
    assert len(_sweep_patch_sizes(brain, clip_dataset(4), ["16"])) == 1  # the base size
    with pytest.raises(ValueError, match=r"test_patch_sizes \[24\] differ from the base"):
        _sweep_patch_sizes(brain, clip_dataset(4), [16, 24])
    with pytest.raises(ValueError, match="at least one patch size"):
        _sweep_patch_sizes(brain, clip_dataset(4), [])
    with pytest.raises(ValueError, match="test_patch_sizes must be"):
        _sweep_patch_sizes(brain, clip_dataset(4), ["16-48"])


RANKS_SCRIPT = """
import json, sys, time
import torch
from fastast_plugin.training.recipe import ddp_group

with ddp_group({"distributed_backend": "gloo"}):
    rank = torch.distributed.get_rank()
    if rank == 0:  # the main process still writes its export when the others are done
        time.sleep(1.0)
    body_end = time.time()
left = time.time()
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
    json.dump({"body_end": body_end, "left": left,
               "initialized": torch.distributed.is_initialized()}, f)
"""


def test_ddp_group_ranks_leave_together_and_the_group_is_destroyed(two_gloo_ranks):
    """A rank that left early could abort in the live group's destructor (SIGABRT)."""
    ranks = two_gloo_ranks(RANKS_SCRIPT)
    assert not any(rank["initialized"] for rank in ranks)
    assert ranks[1]["left"] >= ranks[0]["body_end"]


def test_ddp_group_is_destroyed_after_an_exception_without_waiting(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    waited = []
    monkeypatch.setattr(sb.utils.distributed, "ddp_barrier", lambda: waited.append(True))
    with pytest.raises(RuntimeError, match="in the block"):
        with ddp_group({"distributed_backend": "gloo"}):
            assert torch.distributed.is_initialized()
            raise RuntimeError("in the block")
    assert not torch.distributed.is_initialized()
    assert waited == []
    with ddp_group({"distributed_backend": "gloo"}):
        pass
    assert not torch.distributed.is_initialized()
    assert waited == [True]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_label_recipe(tmp_path):
    write_manifest({"a": {"label": "yes"}, "b": {"label": "no"}}, str(tmp_path / "train.json"))
    (tmp_path / "x.yaml").write_text(
        "folder: !PLACEHOLDER\nn_classes: null\nhead: !new:torch.nn.Linear [4, !ref <n_classes>]\n"
    )
    return str(tmp_path / "x.yaml"), lambda settings: {"train": settings["folder"] + "/train.json"}


def test_prepare_and_load_fills_n_classes_and_refuses_a_number_that_differs(tmp_path):
    hparams_file, prepare = _two_label_recipe(tmp_path)
    hparams, overrides, _ = prepare_and_load(hparams_file, {"folder": str(tmp_path)}, prepare)
    assert hparams["head"].out_features == 2 and overrides["n_classes"] == 2
    same, _, _ = prepare_and_load(hparams_file, {"folder": str(tmp_path), "n_classes": 2}, prepare)
    assert same["head"].out_features == 2
    with pytest.raises(ValueError, match=r"train\.json has 2 classes, but n_classes is 10"):
        prepare_and_load(hparams_file, f"folder: {tmp_path}\nn_classes: 10", prepare)
