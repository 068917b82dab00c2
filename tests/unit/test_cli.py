"""The ``fastast`` command: subcommands, their --help, and dispatch to each module's main.

Authors
 * fastast developers 2026
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin import cli
from fastast_plugin.models.dymn.model import DyMN

COMMANDS = ("bench", "visualize", "sweep", "precompute")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastast")
    assert all(name in text for name in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: fastast {command}")


def test_unknown_or_missing_command_is_an_error(capsys):
    for argv in ([], ["train"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    assert "invalid choice: 'train'" in capsys.readouterr().err


def test_wrong_inputs_give_a_message_and_status_2(tmp_path, capsys):
    missing = tmp_path / "no_model"
    sf.write(tmp_path / "a.wav", np.zeros(16000), 16000)
    assert cli.main(["classify", str(missing), str(tmp_path / "a.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastast: error:") and "no_model" in err and "Traceback" not in err
    (tmp_path / "m.pth").write_bytes(b"not a checkpoint")
    assert cli.main(["export", str(tmp_path / "m.pth"), str(tmp_path / "out")]) == 2
    assert "m.pth" in capsys.readouterr().err


def test_precompute_runs_through_the_dispatcher(tmp_path):
    torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp_path / "t.pt")
    sf.write(tmp_path / "a.wav", np.zeros(16000), 16000)
    (tmp_path / "m.json").write_text(json.dumps({"a": {"wav": str(tmp_path / "a.wav")}}))
    store = cli.run(
        [
            "precompute",
            "--manifest",
            str(tmp_path / "m.json"),
            "--out",
            str(tmp_path / "kd"),
            "--weights",
            str(tmp_path / "t.pt"),
            "--width-mult",
            "0.4",
        ]
    )
    assert store.logits.shape == (1, 3) and store.index == {"a": 0}


def test_sweep_needs_a_checkpoint_or_bench(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--out", "x"])
    assert "needs --checkpoint, --manifest and --labels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--bench", "--out", "x", "--patch-sizes", "16x"])
    assert "--patch-sizes must be a positive int" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, usage",
    [("fastast_plugin.cli", "usage: fastast")]
    + [
        (f"fastast_plugin.{name}", f"usage: python -m fastast_plugin.{name}")
        for name in ("bench", "visualize", "precompute")
    ],
)
def test_python_dash_m_help(module, usage):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage)
