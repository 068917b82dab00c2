"""The ESC-50 recipe end to end on generated data (CPU): 5-fold cross-validation, resume, debug.

Authors
 * fastast developers 2026
"""

import json
import math
import statistics

import pytest
from recipe_helpers import TINY_AST_MODEL, epoch_stats, epochs, run_recipe

from fastast_plugin.data.synthetic import write_esc50

CATEGORIES = ("dog", "rain")  # a steady tone and a chirp
EPOCHS = 3
FAST_TRAINING = (
    f"--n_classes={len(CATEGORIES)}",
    "--batch_size=8",
    "--lr=0.001",
    "--warmup_steps=10",
    "--time_mask=24",  # 96 (AST's) would hide most of a 128-frame input
    "--r=8",
)


@pytest.fixture(scope="module")
def esc50_data(tmp_path_factory):
    """2 categories x 5 folds x 8 sources x 2 takes = 160 one-second clips at 44.1 kHz."""
    folder = tmp_path_factory.mktemp("esc50") / "ESC-50-master"
    write_esc50(str(folder), CATEGORIES, sources_per_fold=8, takes_per_source=2, duration=1.0)
    return folder


@pytest.fixture(scope="module")
def cross_validation(esc50_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("esc50_run") / "results"
    args = [
        "hparams/tome_ast.yaml",
        f"--data_folder={esc50_data}",
        f"--output_folder={out}",
        f"--number_of_epochs={EPOCHS}",
        *TINY_AST_MODEL,  # from the default init_from, AST's AudioSet model (strides 10/10)
        *FAST_TRAINING,
    ]
    run_recipe("ESC50", args, out.parent / "cv.out")
    return out, args


def test_all_folds_trained_and_aggregated(cross_validation):
    out, _ = cross_validation
    folds = {}
    for fold in range(1, 6):
        folder = out / f"fold_{fold}"
        assert epochs((folder / "train_log.txt").read_text()) == list(range(1, EPOCHS + 1))
        record = json.loads((folder / "test_metrics.json").read_text())
        assert record["clips"] == 32  # the held-out fold only
        assert record["epoch"] == EPOCHS  # the last epoch is tested (no choice on the test fold)
        folds[f"fold_{fold}"] = record["acc"]
    summary = json.loads((out / "cv_results.json").read_text())
    assert summary["folds"] == folds
    assert summary["mean"] == pytest.approx(statistics.mean(folds.values()))
    assert summary["std"] == pytest.approx(statistics.stdev(folds.values()))
    assert "mean ± std" in (out / "cv_results.md").read_text()
    print(
        f"\nESC-50 (generated, 2 classes, chance 0.5): "
        f"{summary['mean']:.3f} ± {summary['std']:.3f} {folds}"
    )
    assert summary["mean"] >= 0.75, summary


def test_rerunning_a_finished_fold_only_tests_it(cross_validation):
    out, args = cross_validation
    before = (out / "fold_2" / "train_log.txt").read_text()
    run_recipe("ESC50", [*args, "--fold=2"], out.parent / "fold2.out")
    after = (out / "fold_2" / "train_log.txt").read_text()
    assert epochs(after) == epochs(before)  # no epoch trained again
    assert after.count("test acc") == before.count("test acc") + 1
    assert len(json.loads((out / "cv_results.json").read_text())["folds"]) == 5


def test_debug_mode_with_the_recipe_defaults(esc50_data, tmp_path):
    out = tmp_path / "debug"
    run_recipe(
        "ESC50",
        [
            "hparams/ast.yaml",
            f"--data_folder={esc50_data}",
            f"--output_folder={out}",
            "--n_classes=2",
            "--fold=4",
            "--debug",
            *TINY_AST_MODEL,
        ],
        tmp_path / "debug.out",
    )
    assert epochs((out / "fold_4" / "train_log.txt").read_text()) == [1, 2]
    assert json.loads((out / "cv_results.json").read_text())["folds"].keys() == {"fold_4"}


def test_scratch_yaml_learns_from_random_weights(esc50_data, tmp_path):
    """``tome_ast_scratch.yaml`` (random init, its model, optimiser, lr, silence padding)
    on fold 1 of the generated data (128 training clips of 1 s), sized to it: 128 frames
    (the time mask scaled with them, 48 of 512 -> 12), batches of 8, a one-epoch warm-up,
    6 epochs in debug mode."""
    out = tmp_path / "scratch"
    run_recipe(
        "ESC50",
        [
            "hparams/tome_ast_scratch.yaml",
            f"--data_folder={esc50_data}",
            f"--output_folder={out}",
            "--fold=1",
            "--target_length=128",
            "--time_mask=12",
            "--batch_size=8",
            "--warmup_steps=16",
            "--debug",
            "--debug_batches=16",
            "--debug_epochs=6",
            "--num_workers=0",
            "--device=cpu",
            "--noprogressbar",
        ],
        tmp_path / "scratch.out",
    )
    stats = epoch_stats((out / "fold_1" / "train_log.txt").read_text())
    assert [int(row["epoch"]) for row in stats] == list(range(1, 7))
    record = json.loads((out / "fold_1" / "test_metrics.json").read_text())
    print(
        f"\nESC-50 scratch (generated, chance 0.5): train loss "
        f"{[row['train loss'] for row in stats]}, test acc {record['acc']:.3f}"
    )
    assert stats[-1]["train loss"] < 0.7 * math.log(2), stats  # well below chance (ln 2)
    assert record["clips"] == 32 and record["acc"] >= 0.8, record
