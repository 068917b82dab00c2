#!/usr/bin/env python3
"""``make demo``: the Speech Commands recipe trains a tiny ToMe-AST on generated sounds (CPU).

A repository script (``python tools/demo.py``), not part of the installed
package: it runs ``recipes/SpeechCommands/train.py`` of this checkout, with
``fastast_plugin`` installed (editable or not).

1. Generates a small dataset in the exact layout of ``speech_commands_v0.02``
   (word folders, ``validation_list.txt``, ``testing_list.txt``,
   ``_background_noise_``) whose four "words" are procedural sound classes
   (``fastast_plugin.data.synthetic``).
2. Trains a tiny ToMe-AST with the recipe itself,
   ``recipes/SpeechCommands/train.py hparams/tome_ast.yaml``, shrunk by
   command-line overrides (2 blocks of ``tiny224``, 16x16 patches, short
   schedule, light augmentation), evaluating the best checkpoint on the test
   list.
3. Exports the trained model (``fastast export``) into an inference folder,
   classifies generated files with ``fastast classify`` (one 1 s clip, one
   44.1 kHz stereo clip, one 25 s recording classified in windows) and draws
   the merged tokens of one of them (``fastast visualize``).
4. Evaluates the same weights on the test list at other merging rates
   (``--test_only --r=...``) and prints accuracy and speed side by side.

Runs in a few minutes on 2 CPU cores. Each training process uses one
thread by default (``--threads``): on small or shared machines that is
faster than several.

Authors
 * fastast developers 2026
"""

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from fastast_plugin.data.synthetic import CLASSES, synthesize, write_speech_commands

# this checkout's recipe, next to tools/
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "SpeechCommands"

# Overrides that shrink the recipe to a CPU demo (everything else is the
# recipe's tome_ast.yaml).
TINY = (
    "--model_size=tiny224",
    "--depth=2",
    "--fstride=16",
    "--tstride=16",
    "--batch_size=8",
    "--lr=0.001",
    "--warmup_steps=10",
    "--lr_decay_start=3",
    "--loss=ce",
    "--mixup_prob=0",
    "--freq_mask=12",
    "--time_mask=12",
    "--noise_scale=0",
    "--roll_shift=0",
    "--num_workers=0",
    "--init_from=",  # random init (the recipe's default, ImageNet DeiT-B/384, fits base384 only)
    "--valid_dataloader_options={batch_size: 64, num_workers: 0}",
)


def _run_recipe(args, threads, log_path):
    """Run the recipe's ``train.py`` with ``args``; raise with its log tail if it fails.

    Arguments
    ---------
    args : list of str
        Arguments after ``train.py``.
    threads : int
        Torch / OpenMP threads of the process.
    log_path : str
        Where the process output goes.

    Returns
    -------
    float
        Wall-clock seconds.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.run(
            [sys.executable, "train.py", *args],
            cwd=RECIPE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if process.returncode != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-30:])
        raise RuntimeError(
            f"recipe failed (exit {process.returncode}): train.py {' '.join(args)}\n{tail}"
        )
    return time.perf_counter() - start


def main(argv=None):
    """Generate data, train with the recipe, evaluate at several r and print the table.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv``).

    Returns
    -------
    list of dict
        One ``test_metrics.json`` record per evaluated ``r``.

    Example
    -------
    >>> rows = main(["--speakers", "20", "--epochs", "1"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=300, help="speakers (4 clips each)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--r", type=int, default=8, help="tokens merged per block in training")
    parser.add_argument("--eval-r", type=int, nargs="+", default=[0, 8, 16])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep", default=None, help="keep data and results in this folder")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        data, out = root / "speech_commands_v0.02", root / "results"
        print(f"Generating a Speech Commands-style dataset in {data} ...", flush=True)
        splits = write_speech_commands(str(data), CLASSES, speakers=args.speakers)
        common = [
            "hparams/tome_ast.yaml",
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--device=cpu",
            "--noprogressbar",
            f"--n_classes={len(CLASSES)}",
            f"--number_of_epochs={args.epochs}",
            *TINY,
        ]
        train_args = [*common, f"--r={args.r}"]
        print(
            f"Training ({', '.join(f'{s} {len(f)}' for s, f in splits.items())} clips):\n"
            f"  cd {RECIPE} && python train.py {shlex.join(train_args)}",
            flush=True,
        )
        seconds = _run_recipe(train_args, args.threads, str(root / "train.out"))
        print(f"  done in {seconds:.0f} s:", flush=True)
        with open(out / "train_log.txt") as log:
            for line in log:
                print(f"  {line.rstrip()}")

        use_the_model(out, root, args.r, args.threads)

        rows = []
        for r in args.eval_r:
            metrics_file = out / f"test_metrics_r{r}.json"
            eval_args = [
                *common,
                "--test_only",
                f"--r={r}",
                f"--test_metrics_file={metrics_file}",
            ]
            _run_recipe(eval_args, args.threads, str(root / f"test_r{r}.out"))
            with open(metrics_file) as f:
                rows.append(json.load(f))
        print_table(rows, args.r, len(CLASSES))
    return rows


def _fastast(args, threads):
    """Run the ``fastast`` command (this interpreter's), printing it and its output."""
    command = [sys.executable, "-m", "fastast_plugin.cli", *map(str, args)]
    shown = "fastast " + shlex.join(map(str, args))
    print(f"  $ {shown}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        print(f"    {line}")
    if result.returncode != 0:
        raise RuntimeError(f"{shown} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")


def use_the_model(results, root, r, threads):
    """Export the trained model, classify generated files, draw the merged tokens.

    Arguments
    ---------
    results : pathlib.Path
        The recipe's output folder.
    root : pathlib.Path
        Where the model folder, the clips and the picture go.
    r : int
        Tokens merged per block in the exported model.
    threads : int
        Torch / OpenMP threads of each command.
    """
    model, clips = root / "model", root / "clips"
    shutil.rmtree(clips, ignore_errors=True)
    clips.mkdir(parents=True)
    sf.write(clips / "tone_16k.wav", synthesize("tone", 1.0, seed=7), 16000)
    stereo = synthesize("chirp", 1.0, seed=8, sample_rate=44100)
    sf.write(clips / "chirp_44k_stereo.wav", np.stack([stereo, 0.5 * stereo], 1), 44100)
    parts = [synthesize(label, 6.25, seed=9 + i) for i, label in enumerate(CLASSES)]
    sf.write(clips / "recording_25s.flac", np.concatenate(parts), 16000)
    print(
        "\nUsing the model: export, classify files of any rate and length, draw tokens", flush=True
    )
    _fastast(["export", results, model, "--r", r], threads)
    _fastast(["classify", model, clips, "--top-k", "2"], threads)
    _fastast(["classify", model, clips / "recording_25s.flac", "--json", "--top-k", "1"], threads)
    picture = root / "tokens_tone_16k.png"
    if importlib.util.find_spec("matplotlib") is None:  # not a dependency of the package itself
        picture = "none (the picture needs matplotlib: pip install matplotlib)"
    else:
        _fastast(
            [
                "visualize",
                clips / "tone_16k.wav",
                "--checkpoint",
                model,
                "--r",
                r,
                "--out",
                picture,
            ],
            threads,
        )
    print(f"  model folder: {model}\n  clips: {clips}\n  merged-token picture: {picture}")


def print_table(rows, train_r, n_classes):
    """Print the accuracy / speed table of the evaluated merging rates.

    Arguments
    ---------
    rows : list of dict
        ``test_metrics.json`` records.
    train_r : int
        ``r`` used in training.
    n_classes : int
        Number of classes (for the chance level).

    Example
    -------
    >>> row = {"r": 0, "clips": 8, "tokens_in": 66, "tokens_out": 66, "acc": 1.0}
    >>> row["clips_per_s"] = 100.0
    >>> print_table([row], 8, 4)  # doctest: +NORMALIZE_WHITESPACE
    <BLANKLINE>
    Tiny ToMe-AST trained at r=8; test set of 8 clips
    | r at test | tokens in -> out | accuracy | clips/s | speed-up vs r=0 |
    |---|---|---|---|---|
    | 0 | 66 -> 66 | 1.000 | 100 | 1.00x |
    (chance = 0.25; clips/s: features + encoder + head in the recipe's test stage,
    batches of 64; timings on shared CPUs are noisy)
    """
    base = next((row for row in rows if row["r"] == 0), rows[0])
    print(f"\nTiny ToMe-AST trained at r={train_r}; test set of {base['clips']} clips")
    print("| r at test | tokens in -> out | accuracy | clips/s | speed-up vs r=0 |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['r']} | {row['tokens_in']} -> {row['tokens_out']} | "
            f"{row['acc']:.3f} | {row['clips_per_s']:.0f} | "
            f"{row['clips_per_s'] / base['clips_per_s']:.2f}x |"
        )
    print(
        f"(chance = {1 / n_classes:.2f}; clips/s: features + encoder + head in the "
        "recipe's test stage, batches of 64; timings on shared CPUs are noisy)"
    )


if __name__ == "__main__":
    main()
