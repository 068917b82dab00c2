"""Unit tests for fastast_plugin.recipe: command line, model file, patch-size sweep.

``run_experiment`` itself trains, so it is tested in
``tests/integration/test_training.py`` and through the recipes.

Authors
 * fastast developers 2026
"""

import pytest
import torch

from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.recipe import parse_arguments, sweep_patch_sizes, write_model_file


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
    write_model_file(brain, str(path))
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
    rows = sweep_patch_sizes(
        brain, clip_dataset(6), ["16x32", 16, [32, 16]], str(tmp_path / "sweep"),
        test_loader_kwargs={"batch_size": 4},
    )
    assert [row["patch_size"] for row in rows] == ["16x32", "16", "32x16"]
    assert all(row["clips"] == 6 for row in rows)
    assert brain.modules.embedding_model.patch_size == (32, 32)
    assert (tmp_path / "sweep.csv").read_text().startswith("patch_size,")


def test_sweep_refuses_other_sizes_on_a_fixed_patch_encoder(tiny_brain, clip_dataset):
    brain = tiny_brain("cpu")
    assert len(sweep_patch_sizes(brain, clip_dataset(4), ["16"])) == 1  # the base size
    with pytest.raises(ValueError, match=r"test_patch_sizes \[24\] differ from the base"):
        sweep_patch_sizes(brain, clip_dataset(4), [16, 24])
    with pytest.raises(ValueError, match="at least one patch size"):
        sweep_patch_sizes(brain, clip_dataset(4), [])
    with pytest.raises(ValueError, match="test_patch_sizes must be"):
        sweep_patch_sizes(brain, clip_dataset(4), ["16-48"])
