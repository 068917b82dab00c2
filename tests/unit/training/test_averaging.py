"""Unit tests for fastast_plugin.training.averaging: AST's averaging of the last epochs' weights.

Authors
 * fastast developers 2026
"""

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from fastast_plugin.training.averaging import _epoch_checkpoints, save_averaged_checkpoint


def checkpointed(tmp_path, epochs):
    torch.manual_seed(0)
    modules = {"embedding_model": torch.nn.Linear(3, 2), "classifier": torch.nn.Linear(2, 1)}
    checkpointer = Checkpointer(tmp_path, dict(modules))
    saved = {}
    for epoch in epochs:
        for module in modules.values():
            for p in module.parameters():
                p.data.normal_()
        saved[epoch] = {
            k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in modules.items()
        }
        checkpointer.save_checkpoint(meta={"epoch": epoch, "mAP": 0.1 * epoch}, verbosity=0)
    return modules, checkpointer, saved


def test_the_last_n_epochs_are_averaged_loaded_and_saved(tmp_path):
    modules, checkpointer, saved = checkpointed(tmp_path, [1, 2, 3, 4])
    assert save_averaged_checkpoint(checkpointer, modules, last=3) == [2, 3, 4]
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            expected = sum(saved[e][name][key] for e in (2, 3, 4)) / 3
            torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
    averaged = checkpointer.find_checkpoint(max_key="averaged")
    assert averaged.meta["averaged_epochs"] == [2, 3, 4] and averaged.meta["epoch"] == 4
    # the average is not one of the epochs averaged next time
    assert [c.meta["epoch"] for c in _epoch_checkpoints(checkpointer)] == [1, 2, 3, 4]


def test_a_rerun_reuses_the_average_and_more_epochs_than_exist_takes_all(tmp_path):
    modules, checkpointer, saved = checkpointed(tmp_path, [1, 2])
    assert save_averaged_checkpoint(checkpointer, modules, last=5) == [1, 2]
    first = {k: v.clone() for k, v in modules["classifier"].state_dict().items()}
    for p in modules["classifier"].parameters():
        p.data.zero_()
    assert save_averaged_checkpoint(checkpointer, modules, last=5) == [1, 2]
    assert len(checkpointer.list_checkpoints()) == 3  # two epochs + one average
    for key, value in modules["classifier"].state_dict().items():
        torch.testing.assert_close(value, first[key])


def test_errors_name_the_problem(tmp_path):
    modules, checkpointer, _ = checkpointed(tmp_path / "a", [])
    with pytest.raises(ValueError, match="no end-of-epoch checkpoints"):
        save_averaged_checkpoint(checkpointer, modules, last=2)
    with pytest.raises(ValueError, match="integer >= 1"):
        save_averaged_checkpoint(checkpointer, modules, last=0)
    modules, checkpointer, _ = checkpointed(tmp_path / "b", [1])
    with pytest.raises(ValueError, match="'head' is not a recoverable"):
        save_averaged_checkpoint(checkpointer, modules, last=1, names=("head",))


def test_compiled_modules_are_averaged_as_the_plain_ones(tmp_path):
    """--compile: the Brain's modules are OptimizedModule wrappers of the checkpointed ones."""
    modules, checkpointer, saved = checkpointed(tmp_path, [1, 2])
    compiled = {name: torch.compile(module) for name, module in modules.items()}
    assert save_averaged_checkpoint(checkpointer, compiled, last=2) == [1, 2]
    expected = (saved[1]["classifier"]["weight"] + saved[2]["classifier"]["weight"]) / 2
    torch.testing.assert_close(modules["classifier"].weight.data, expected, rtol=0, atol=1e-6)
