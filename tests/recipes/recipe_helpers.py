"""Helpers for the recipe tests: where the recipes are, and how to run one.

Recipes are scripts, so they run as subprocesses with the recipe folder as
working directory, exactly as users run them. Each process uses one thread
(``OMP_NUM_THREADS=1``), which is fastest on small shared machines, and reads
pretrained weights from the test session's pre-filled cache
(``PRETRAINED_ENV``, set by ``conftest.pretrained_cache``): every recipe's
default ``init_from`` names a registry entry, offline.

Authors
 * fastast developers 2026
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
# two CPU ranks (the recipes take --distributed_backend=gloo)
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")

# The recipes' default init_from (registry names): AST's ImageNet start (Speech
# Commands, AudioSet), AST's AudioSet model (ESC-50), FlexiAST's ImageNet ViT-B/16
# at 224 px (VoxCeleb)
DEIT = "deit_base_distilled_patch16_384.fb_in1k"
AUDIOSET_AST = "ast-audioset-10-10-0.4593"
VIT = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
DEFAULT_INIT = {"SpeechCommands": DEIT, "AudioSet": DEIT, "ESC50": AUDIOSET_AST, "VoxCeleb": VIT}

# FASTAST_CACHE / HF_HOME / HF_HUB_OFFLINE of the session's weights cache
# (filled once by the ``pretrained_cache`` fixture of conftest.py).
PRETRAINED_ENV = {}


def tiny_model(strides=16):
    """Overrides that make a recipe trainable on a CPU in seconds.

    Arguments
    ---------
    strides : int
        ``fstride`` and ``tstride``: 16 (64 patches of 128 frames) fits
        ImageNet weights and flexible encoders; an AudioSet AST checkpoint
        (ESC-50's start) fits only its own 10.

    Returns
    -------
    tuple of str
    """
    return (
        "--model_size=tiny224",
        "--depth=2",
        f"--fstride={strides}",
        f"--tstride={strides}",
        "--target_length=128",
        "--num_workers=0",
        "--device=cpu",
        "--noprogressbar",
    )


TINY_MODEL = tiny_model()
# From AST's AudioSet checkpoint (strides 10/10), ESC-50's default start
TINY_AST_MODEL = tiny_model(strides=10)


def recipe_env(**changes):
    """Environment of a recipe subprocess: one thread, no GPU, the session's weights cache.

    Arguments
    ---------
    **changes : str
        Variables to set on top (e.g. another ``FASTAST_CACHE``).

    Returns
    -------
    dict
    """
    single_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return {**os.environ, **single_thread, **PRETRAINED_ENV, **changes}


def run_recipe(recipe, args, log_path, launcher=(), timeout=600, must_fail=False, env=None):
    """Run ``train.py`` of a recipe; fail the test with the log tail if it ends otherwise than expected.

    Arguments
    ---------
    recipe : str
        Folder under ``recipes/``.
    args : list of str
        Arguments after ``train.py``.
    log_path : pathlib.Path
        Where stdout and stderr go.
    launcher : tuple of str
        Command before ``train.py`` (default: this Python).
    timeout : float
        Seconds before the run is killed.
    must_fail : bool
        The run must fail (its error is then at the end of the output).
    env : dict, optional
        The process environment (default ``recipe_env()``).

    Returns
    -------
    str
        The output of the run.
    """
    command = [*(launcher or (sys.executable,)), "train.py", *map(str, args)]
    with open(log_path, "w") as log:
        process = subprocess.run(
            command,
            cwd=RECIPES / recipe,
            env=env or recipe_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    output = Path(log_path).read_text()
    if must_fail and process.returncode == 0:
        pytest.fail(f"{' '.join(command)} succeeded but should have failed:\n{output[-2000:]}")
    if not must_fail and process.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {process.returncode}:\n{output[-4000:]}")
    return output


def run_failing_recipe(recipe, args, log_path, timeout=300, env=None):
    """``run_recipe`` for a run that must fail; return its output (the error at its end)."""
    return run_recipe(recipe, args, log_path, timeout=timeout, must_fail=True, env=env)


def epoch_stats(train_log_text):
    """``{name: number}`` of every ``epoch: N, ...`` line of a train log's text.

    Arguments
    ---------
    train_log_text : str
        The contents of a ``train_log.txt``.

    Returns
    -------
    list of dict
        One dict per epoch line, e.g. ``{"epoch": 1.0, "train loss": 0.5, ...}``.
    """
    rows = []
    for line in train_log_text.splitlines():
        if line.startswith("epoch:"):
            pairs = re.findall(r"([a-z_ ]+): ([-+.\deE]+)", line)
            rows.append({name.strip(): float(value) for name, value in pairs})
    return rows


def epochs(train_log_text):
    """Epoch numbers (ints, in log order) of the ``epoch_stats`` of a train log's text."""
    return [int(row["epoch"]) for row in epoch_stats(train_log_text)]
