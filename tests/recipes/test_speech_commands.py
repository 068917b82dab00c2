"""The Speech Commands recipe end to end on generated data (CPU): accuracy, resume, debug, DDP.

One training run is shared by the accuracy and resume tests: it is killed
as soon as epoch 2 starts, restarted with the same command, and must then
continue from epoch 2, end after the same number of epochs and reach a test
accuracy far above chance on four generated classes.

Authors
 * fastast developers 2026
"""

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import ruamel.yaml
import soundfile
import torch
from recipe_helpers import (
    RECIPES,
    TINY_MODEL,
    TORCHRUN,
    epoch_stats,
    epochs,
    recipe_env,
    run_recipe,
)

from fastast_plugin.data.synthetic import CLASSES, write_speech_commands

EPOCHS = 3
# Learnable in a few hundred steps: no mixup/masks/noise, CE, a short warm-up.
FAST_TRAINING = (
    f"--n_classes={len(CLASSES)}",
    "--batch_size=8",
    "--lr=0.001",
    "--warmup_steps=10",
    "--lr_decay_start=2",
    "--loss=ce",
    "--mixup_prob=0",
    "--freq_mask=0",
    "--time_mask=0",
    "--noise_scale=0",
    "--roll_shift=0",
)


def _read(path):
    return Path(path).read_text() if Path(path).exists() else ""


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """Train, kill at the start of epoch 2, restart: the recipe as a user would run it."""
    root = tmp_path_factory.mktemp("sc_recipe")
    data = root / "speech_commands_v0.02"
    write_speech_commands(str(data), CLASSES, speakers=300)  # 720 / 240 / 240 clips
    out = root / "results"
    args = [
        "hparams/tome_ast.yaml",
        f"--data_folder={data}",
        f"--output_folder={out}",
        f"--number_of_epochs={EPOCHS}",
        *TINY_MODEL,
        *FAST_TRAINING,
    ]
    with open(root / "first_run.out", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "train.py", *args],
            cwd=RECIPES / "SpeechCommands",
            env=recipe_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 600
        while "Epoch 2: training" not in _read(out / "log.txt"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = _read(root / "first_run.out")[-3000:]
                pytest.fail(f"first run ended before epoch 2:\n{tail}")
            time.sleep(0.05)
        process.kill()
        process.wait()
    first = SimpleNamespace(log=_read(out / "log.txt"), train_log=_read(out / "train_log.txt"))
    run_recipe("SpeechCommands", args, root / "second_run.out")
    return SimpleNamespace(root=root, data=data, out=out, args=args, first=first)


def test_restart_continues_from_epoch_2(interrupted_run):
    run = interrupted_run
    assert epochs(_read(run.out / "train_log.txt")) == list(range(1, EPOCHS + 1))
    assert "test acc" not in run.first.train_log
    assert epochs(run.first.train_log) == [1]
    resumed = _read(run.out / "log.txt")[len(run.first.log) :]
    started = [e for e in range(1, EPOCHS + 1) if f"Epoch {e}: training" in resumed]
    assert started == list(range(2, EPOCHS + 1))
    # the newest checkpoint is the last epoch's
    checkpoints = sorted((run.out / "save").glob("CKPT+*/CKPT.yaml"))
    yaml = ruamel.yaml.YAML(typ="safe")
    assert max(yaml.load(c.read_text())["epoch"] for c in checkpoints) == EPOCHS


def test_accuracy_far_above_chance_at_r_and_r0(interrupted_run):
    run = interrupted_run
    merged = json.loads(_read(run.out / "test_metrics.json"))
    assert merged["r"] == 8 and merged["clips"] == 240
    assert merged["tokens_in"] == 66 and merged["tokens_out"] == 50
    assert merged["epoch"] in range(1, EPOCHS + 1)
    # the same weights without merging
    r0_file = run.out / "test_metrics_r0.json"
    run_recipe(
        "SpeechCommands",
        [*run.args, "--test_only", "--r=0", f"--test_metrics_file={r0_file}"],
        run.root / "test_r0.out",
    )
    plain = json.loads(_read(r0_file))
    assert plain["r"] == 0 and plain["tokens_out"] == 66 and plain["clips"] == 240
    print(
        f"\nSpeechCommands (generated, 4 classes, chance 0.25): "
        f"r=8 acc {merged['acc']:.3f} ({merged['clips_per_s']:.0f} clips/s), "
        f"r=0 acc {plain['acc']:.3f} ({plain['clips_per_s']:.0f} clips/s)"
    )
    assert merged["acc"] >= 0.6, merged
    assert plain["acc"] >= 0.6, plain
    assert merged["clips_per_s"] > 0 and plain["clips_per_s"] > 0


def test_exported_model_predicts_what_the_test_stage_predicted(interrupted_run):
    """The recipe's export/ folder, loaded with AudioClassifier, gives the test stage's labels."""
    from fastast_plugin.inference.classifier import AudioClassifier

    run = interrupted_run
    with open(run.out / "test_predictions.csv", encoding="utf-8") as f:
        predicted = dict(line.strip().split(",")[:2] for line in list(f)[1:])
    with open(run.out / "save" / "test.json", encoding="utf-8") as f:
        test = json.load(f)
    assert sorted(predicted) == sorted(test)
    clf = AudioClassifier.from_hparams(source=run.out / "export")
    ids = sorted(test)
    results = clf.classify_files(
        [test[i]["wav"] for i in ids], batch_size=32, top_k=1, progress=False
    )
    assert [res.labels[0] for res in results] == [predicted[i] for i in ids]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """3 words, 5 speakers, 3 takes: 27 train, 9 valid, 9 test clips."""
    data = tmp_path_factory.mktemp("sc_small") / "speech_commands_v0.02"
    write_speech_commands(str(data), ("yes", "no", "up"), speakers=5, clips_per_speaker=3)
    return data


def test_debug_mode_with_the_recipe_defaults(small_dataset, tmp_path):
    out = tmp_path / "debug"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast.yaml",
            f"--data_folder={small_dataset}",
            f"--output_folder={out}",
            "--n_classes=3",
            "--batch_size=4",
            "--debug",
            *TINY_MODEL,
        ],
        tmp_path / "debug.out",
    )
    assert epochs(_read(out / "train_log.txt")) == [1, 2]  # debug_epochs
    assert json.loads(_read(out / "test_metrics.json"))["clips"] == 8  # 2 batches of 4
    assert not list((out / "save").glob("CKPT+*"))  # debug checkpoints go to a temp dir


def test_torchrun_two_cpu_processes_evaluate_every_clip_once(small_dataset, tmp_path):
    out = tmp_path / "ddp"
    args = [
        "hparams/tome_ast.yaml",
        f"--data_folder={small_dataset}",
        f"--output_folder={out}",
        "--n_classes=3",
        "--batch_size=4",
        "--number_of_epochs=2",
        *TINY_MODEL,
    ]
    run_recipe(
        "SpeechCommands",
        [*args, "--distributed_backend=gloo"],
        tmp_path / "ddp.out",
        launcher=TORCHRUN,
    )
    valid_clips = [
        line.split("valid clips: ")[1].split(",")[0]
        for line in _read(out / "train_log.txt").splitlines()
        if line.startswith("epoch:")
    ]
    assert valid_clips == ["9", "9"]
    record = json.loads(_read(out / "test_metrics.json"))
    assert record["world_size"] == 2
    assert record["clips"] == 9 and record["rank_clips"] == [5, 4]
    # one process testing the same checkpoint gets the same numbers
    single_file = out / "single_process.json"
    run_recipe(
        "SpeechCommands",
        [*args, "--test_only", f"--test_metrics_file={single_file}"],
        tmp_path / "single.out",
    )
    single = json.loads(_read(single_file))
    assert single["world_size"] == 1 and single["clips"] == 9
    assert single["acc"] == pytest.approx(record["acc"])
    assert single["loss"] == pytest.approx(record["loss"], rel=1e-5)


@pytest.fixture(scope="module")
def dataset_at_8khz_some_stereo(tmp_path_factory):
    """The small dataset as users' own recordings come: 8 kHz, every other file stereo."""
    import numpy as np
    import soundfile as sf
    import torchaudio

    data = tmp_path_factory.mktemp("sc_8k") / "speech_commands_v0.02"
    write_speech_commands(str(data), ("yes", "no", "up"), speakers=5, clips_per_speaker=3)
    for i, path in enumerate(sorted(data.glob("*/*.wav"))):
        wav, rate = sf.read(str(path), dtype="float32")
        wav = torchaudio.functional.resample(torch.from_numpy(wav), rate, 8000).numpy()
        sf.write(str(path), np.stack([wav, 0.5 * wav], 1) if i % 2 else wav, 8000)
    return data


def test_recipe_trains_on_8khz_stereo_data_with_n_classes_from_the_labels(
    dataset_at_8khz_some_stereo, tmp_path
):
    out = tmp_path / "8k"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast.yaml",
            f"--data_folder={dataset_at_8khz_some_stereo}",
            f"--output_folder={out}",
            "--batch_size=4",
            "--debug",
            *TINY_MODEL,
        ],
        tmp_path / "8k.out",
    )
    assert _read(out / "save" / "skipped.csv").splitlines() == ["path,reason"]
    assert json.loads(_read(out / "test_metrics.json"))["clips"] == 8  # 2 batches of 4
    saved = ruamel.yaml.YAML(typ="rt").load(_read(out / "hyperparams.yaml"))
    assert saved["n_classes"] == 3  # the labels found: yes, no, up


def test_strict_audio_skips_them_and_says_the_split_is_empty(dataset_at_8khz_some_stereo, tmp_path):
    out = tmp_path / "strict"
    output = run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast.yaml",
            f"--data_folder={dataset_at_8khz_some_stereo}",
            f"--output_folder={out}",
            "--strict_audio=True",
            *TINY_MODEL,
        ],
        tmp_path / "strict.out",
        must_fail=True,
    )
    # 5 speakers x 3 words x 3 takes; every other file is stereo (checked first)
    assert "the train split is empty" in output
    assert "45 file(s) skipped" in output
    assert "23 2 channels, expected mono, 22 8000 Hz, expected 16000 Hz" in output
    assert "n_classes" not in output.splitlines()[-1]


def test_compiled_run_writes_a_model_and_export_that_load(small_dataset, tmp_path):
    """--compile wraps the modules in OptimizedModule: model.pt and export/ still load, same logits."""
    from fastast_plugin.data.audio import load_audio
    from fastast_plugin.inference.classifier import AudioClassifier
    from fastast_plugin.models.pretrained import from_pretrained

    out = tmp_path / "compiled"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast.yaml",
            f"--data_folder={small_dataset}",
            f"--output_folder={out}",
            "--n_classes=3",
            "--batch_size=9",
            "--number_of_epochs=1",
            "--compile",
            "--compile_module_keys",
            "embedding_model",
            "classifier",
            *TINY_MODEL,
        ],
        tmp_path / "compiled.out",
    )
    with open(out / "save" / "test.json", encoding="utf-8") as f:
        test = json.load(f)
    ids = sorted(test)
    with open(out / "test_predictions.csv", encoding="utf-8") as f:
        tested = {
            row[0]: float(row[2]) for row in (line.strip().split(",") for line in list(f)[1:])
        }

    clf = AudioClassifier.from_hparams(source=out / "export")
    results = clf.classify_files([test[i]["wav"] for i in ids], top_k=1, progress=False)
    exported = torch.stack([res.windows[0].scores for res in results])
    model = from_pretrained(out / "model.pt")
    features = clf.mods.compute_features  # the recipe's KaldiFbank, padded to the model's input
    with torch.no_grad():
        direct = torch.cat([model(features(load_audio(test[i]["wav"])[None])) for i in ids])
    torch.testing.assert_close(exported, direct, atol=1e-5, rtol=1e-5)
    # the test stage's own (compiled) top logits, written with 6 significant digits
    torch.testing.assert_close(
        direct.max(-1).values, torch.tensor([tested[i] for i in ids]), atol=1e-4, rtol=1e-4
    )
    saved = torch.load(out / "model.pt", weights_only=True)["model"]
    assert not [key for key in saved if "_orig_mod" in key]


@pytest.fixture(scope="module")
def dataset_with_words_shorter_than_a_patch(tmp_path_factory):
    """4 classes, 100 speakers (240 / 80 / 80 clips); a sixth of every split cut to
    0.1 s, shorter than one 16-frame patch (as 13 of FSDD's 3,000 words)."""
    data = tmp_path_factory.mktemp("sc_short") / "speech_commands_v0.02"
    splits = write_speech_commands(str(data), CLASSES, speakers=100)
    short = {name: files[::6] for name, files in splits.items()}
    for files in short.values():
        for name in files:
            wav, rate = soundfile.read(data / name)
            soundfile.write(data / name, wav[: rate // 10], rate)
    return data, short


def test_scratch_yaml_learns_in_native_mode_with_clips_shorter_than_a_patch(
    dataset_with_words_shorter_than_a_patch, tmp_path
):
    """``tome_ast_scratch.yaml`` as it is (random init, native lengths, mean-pooled
    patch tokens, time stride 8, its masks and optimiser), only batches of 8 and a
    short warm-up, 30 batches x 12 epochs: the 0.1 s clips are trained on and
    tested, none skipped, and the model learns (loss well below ln 4, accuracy far
    above chance; FSDD's real words reach 0.94, see the recipe README)."""
    data, short = dataset_with_words_shorter_than_a_patch
    out = tmp_path / "scratch"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast_scratch.yaml",
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--download=False",
            "--batch_size=8",
            "--warmup_steps=30",
            "--debug",
            "--debug_batches=30",
            "--debug_epochs=12",
        ],
        tmp_path / "scratch.out",
    )
    stats = epoch_stats(_read(out / "train_log.txt"))
    record = json.loads(_read(out / "test_metrics.json"))
    print(f"\nscratch, native: train loss {[r['train loss'] for r in stats]}, test {record}")
    assert _read(out / "save" / "skipped.csv").strip().count("\n") == 0  # a header only
    test_ids = {row.split(",")[0] for row in _read(out / "test_predictions.csv").splitlines()[1:]}
    assert record["clips"] == len(test_ids) == 80
    assert {name.removesuffix(".wav") for name in short["test"]} <= test_ids
    assert stats[-1]["train loss"] < 0.75 * math.log(len(CLASSES)), stats
    assert record["acc"] >= 0.45, record  # chance 0.25
