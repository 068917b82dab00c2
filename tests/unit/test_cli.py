"""The ``fastast`` command: subcommands, their --help, and dispatch to each module's main.

Authors
 * fastast developers 2026
"""

import argparse
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin import cli
from fastast_plugin.cli_options import SHARED_OPTIONS
from fastast_plugin.models.dymn.model import DyMN

COMMANDS = ("classify", "export", "bench", "visualize", "sweep", "precompute", "weights", "stats")


def test_help_lists_every_command_and_the_global_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastast [-h] [--traceback] COMMAND")
    assert set(cli.COMMANDS) == set(COMMANDS)
    joined = " ".join(text.split())  # argparse wraps long lines
    for name, (help_text, _) in cli.COMMANDS.items():
        assert f" {name} {help_text}" in joined
    assert "--traceback on an error, show the full traceback" in joined


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
        cli.main(["sweep", "--bench", "--out", "x", "--patch-size", "16x"])
    assert "argument --patch-size: the patch size must be a positive int" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "module, usage",
    [("fastast_plugin.cli", "usage: fastast")]
    + [
        # the old flat path runs the module that now holds the code, which names its own path
        (f"fastast_plugin.{name}", f"usage: python -m fastast_plugin.{path}")
        for name, path in (
            ("bench", "evaluation.bench"),
            ("visualize", "evaluation.visualize"),
            ("precompute", "training.precompute"),
            ("sweep", "evaluation.sweep"),
        )
    ],
)
def test_python_dash_m_help(module, usage):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage)


# ----------------------------------------------------------------------
# --traceback
# ----------------------------------------------------------------------
def test_traceback_shows_the_full_error(tmp_path):
    (tmp_path / "m.pth").write_bytes(b"not a checkpoint")
    command = [sys.executable, "-m", "fastast_plugin.cli"]
    argv = ["export", str(tmp_path / "m.pth"), str(tmp_path / "out")]
    plain = subprocess.run(command + argv, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    (message,) = [line for line in plain.stderr.splitlines() if line.startswith("fastast: error:")]
    full = subprocess.run(
        command + ["--traceback"] + argv, capture_output=True, text=True, timeout=300
    )
    assert full.returncode == 1
    assert full.stderr.startswith("Traceback (most recent call last):")
    assert "fastast_plugin/inference/export.py" in full.stderr  # where it was raised from
    assert message.removeprefix("fastast: error: ") in full.stderr.splitlines()[-1]
    assert "fastast: error:" not in full.stderr


# ----------------------------------------------------------------------
# The shared options: one spelling, one type, one meaning
# ----------------------------------------------------------------------
# Each command with arguments that satisfy its required ones, and the shared
# options it takes; bench and sweep take several values of some (one row each).
TAKES = {
    "classify": (
        ["model", "a.wav"],
        {"r", "keep_ratio", "patch_size", "device", "batch_size", "precision"},
        set(),
    ),
    "export": (["model.pth", "out"], {"r", "keep_ratio", "patch_size"}, set()),
    "bench": (
        [],
        {"r", "keep_ratio", "device", "batch_size", "precision"},
        {"r", "keep_ratio", "batch_size", "precision"},
    ),
    "sweep": (
        ["--bench", "--out", "x"],
        {"r", "patch_size", "device", "batch_size", "precision"},
        {"r", "patch_size"},
    ),
    "precompute": (["--manifest", "m.json", "--out", "kd"], {"device", "batch_size"}, set()),
    "visualize": (["a.wav", "--out", "x.png"], {"r", "keep_ratio"}, set()),
}
# option -> (its spelling, a value, what it parses to, a wrong value, the error)
VALUES = {
    "r": ("--r", "16,-1", (16, -1.0), "-3", "expected an int >= 0, or R,INFLECTION"),
    "keep_ratio": ("--keep-ratio", "0.85", 0.85, "1.5", "expected a fraction in (0, 1]"),
    "patch_size": ("--patch-size", "16x24", (16, 24), "16x", "the patch size must be a positive"),
    "device": ("--device", "cuda:1", "cuda:1", "gpu", "expected a torch device"),
    "batch_size": ("--batch-size", "4", 4, "0", "expected an int >= 1, got '0'"),
    "precision": ("--precision", "bf16", "bf16", "fp64", "invalid choice: 'fp64'"),
}
CASES = [(command, name) for command, (_, names, _) in TAKES.items() for name in sorted(names)]


class _Parsed(Exception):
    """Stops a command right after its parser ran (nothing is loaded or written)."""


@pytest.fixture
def parse_only(monkeypatch):
    """``fastast COMMAND ARGS`` as a user types it, returning the command's parsed arguments."""
    original = argparse.ArgumentParser.parse_known_args

    def parse_known_args(parser, *args, **kwargs):
        namespace, rest = original(parser, *args, **kwargs)
        # A command's own parser (the dispatcher's placeholders for them have no --help).
        if parser.prog.startswith("fastast ") and parser.add_help:
            raise _Parsed(namespace)
        return namespace, rest

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)

    def parse(argv):
        with pytest.raises(_Parsed) as parsed:
            cli.main(argv)
        return parsed.value.args[0]

    return parse


@pytest.mark.parametrize("command, name", CASES)
def test_a_shared_option_parses_the_same_in_every_command(command, name, parse_only, capsys):
    required, _, many = TAKES[command]
    flag, text, value, wrong, error = VALUES[name]
    parsed = getattr(parse_only([command, *required, flag, text]), name)
    assert parsed == ([value] if name in many else value)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, *required, flag, wrong])
    assert exit_info.value.code == 2
    assert f"fastast {command}: error: argument {flag}: {error}" in capsys.readouterr().err


@pytest.mark.parametrize("command, name", CASES)
def test_a_shared_option_has_one_help_text(command, name, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    flag, _, shared = SHARED_OPTIONS[name]
    shared = " ".join(shared.split())
    assert f"{flag} " in text and shared in text


@pytest.mark.parametrize(
    "command, old, new, value, parsed",
    [
        ("sweep", "--dtype", "precision", "bf16", "bf16"),
        ("sweep", "--patch-sizes", "patch_size", "16x24", [(16, 24)]),
        ("bench", "--dtypes", "precision", "fp16", ["fp16"]),
        ("bench", "--batch", "batch_size", "3", [3]),
        ("precompute", "--dtype", "store_dtype", "float32", "float32"),
    ],
)
def test_renamed_options_keep_their_old_spelling_with_a_warning(
    command, old, new, value, parsed, parse_only, caplog
):
    required = TAKES[command][0]
    with caplog.at_level(logging.WARNING):
        namespace = parse_only([command, *required, old, value])
    assert getattr(namespace, new) == parsed
    replacement = "--" + new.replace("_", "-")
    assert f"fastast {command}: {old} is deprecated, use {replacement}" in caplog.text


def test_precompute_storage_dtype_is_not_the_precision(parse_only, capsys):
    required = TAKES["precompute"][0]
    assert parse_only(["precompute", *required]).store_dtype == "float16"
    with pytest.raises(SystemExit):
        cli.main(["precompute", *required, "--store-dtype", "bf16"])
    assert "argument --store-dtype: invalid choice: 'bf16'" in capsys.readouterr().err
