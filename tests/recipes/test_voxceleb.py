"""The VoxCeleb1 recipe end to end on generated data (CPU): accuracy, crops, FlexiAST time-only.

Four generated speakers (each one of the four procedural sound classes),
utterances of 1.5 to 3 s, all longer than the 128-frame (1.3 s) crop, so
every training step sees a random crop and every test utterance a fixed
one.

Authors
 * fastast developers 2026
"""

import csv
import json
from pathlib import Path

import pytest
from recipe_helpers import TINY_MODEL, epoch_stats, run_recipe

from fastast_plugin.data.crops import crop_length
from fastast_plugin.data.synthetic import CLASSES, write_voxceleb

EPOCHS = 4
# Learnable in about a hundred steps: no masks, CE, a short warm-up.
FAST_TRAINING = (
    f"--n_classes={len(CLASSES)}",
    "--batch_size=8",
    "--lr=0.0005",
    "--warmup_steps=20",
    "--lr_decay_start=3",
    "--freq_mask=0",
    "--time_mask=0",
)


def _read(path):
    return Path(path).read_text() if Path(path).exists() else ""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ToMe-AST (r=4) trained for 4 epochs on 240 utterances of 4 speakers."""
    root = tmp_path_factory.mktemp("vox_recipe")
    data = root / "voxceleb1"
    splits = write_voxceleb(str(data), speakers=4, videos_per_speaker=4, utterances_per_video=25)
    out = root / "results"
    args = [
        "hparams/tome_ast.yaml",
        f"--data_folder={data}",
        f"--output_folder={out}",
        f"--number_of_epochs={EPOCHS}",
        *TINY_MODEL,
        *FAST_TRAINING,
        "--r=4",
    ]
    output = run_recipe("VoxCeleb", args, root / "train.out")
    return root, data, splits, out, output


def test_trains_end_to_end_far_above_chance(trained):
    root, data, splits, out, _ = trained
    assert {s: len(f) for s, f in splits.items()} == {"train": 240, "valid": 80, "test": 80}
    rows = epoch_stats(_read(out / "train_log.txt"))
    assert [int(r["epoch"]) for r in rows if "valid acc" in r] == list(range(1, EPOCHS + 1))
    assert all(r["valid clips"] == 80 for r in rows if "valid acc" in r)
    metrics = json.loads(_read(out / "test_metrics.json"))
    print(f"\nVoxCeleb (generated, 4 speakers, chance 0.25): test acc {metrics['acc']:.3f}")
    assert metrics["clips"] == 80 and metrics["r"] == 4
    # chance is 0.25; 0.45 of 80 clips is 4 standard deviations above it
    assert metrics["acc"] >= 0.45, metrics
    # every manifest utterance is longer than the crop: crops were taken
    test = json.loads(_read(out / "save" / "test.json"))
    assert min(e["duration"] for e in test.values()) > crop_length(128) / 16000
    assert {e["label"] for e in test.values()} == {f"id{10001 + i}" for i in range(4)}


def test_flexiast_time_only_from_the_trained_model_in_debug_mode(trained, tmp_path):
    _, data, _, out, _ = trained
    flexi = tmp_path / "flexi"
    run_recipe(
        "VoxCeleb",
        [
            "hparams/flexiast.yaml",
            f"--data_folder={data}",
            f"--output_folder={flexi}",
            f"--init_from={out / 'model.pt'}",
            f"--n_classes={len(CLASSES)}",
            "--batch_size=4",
            "--train_patch_sizes=[32, 8]",
            "--test_patch_sizes=[8, 16, 32]",
            "--debug",
            *TINY_MODEL,
        ],
        tmp_path / "flexi.out",
    )
    metrics = json.loads(_read(flexi / "test_metrics.json"))
    assert metrics["clips"] == 8 and metrics["train_patch_sizes"] == [32, 8]
    assert metrics["patch_size"] == [16, 16]  # evaluated at the base patch
    with open(flexi / "patch_sweep.csv") as f:
        rows = list(csv.DictReader(f))
    # time-only: the frequency patch stays 16 (8 rows of 128 mel bins), the time width varies
    tokens = {row["patch_size"]: int(row["tokens"]) for row in rows}
    assert tokens == {"16x8": 8 * 16 + 1, "16": 8 * 8 + 1, "16x32": 8 * 4 + 1}, tokens
