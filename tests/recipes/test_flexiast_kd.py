"""FlexiAST and distillation recipes end to end on generated data (CPU).

Speech Commands: ``tome_ast_kd.yaml`` with a tiny DyMN teacher run online
from a checkpoint, and from logits precomputed by the CLI over a manifest
that lacks some clips (their count is logged); ``flexiast.yaml`` in debug
mode (supervised flexification from a fixed-patch encoder with other
strides). ESC-50: a fixed-patch AST for fold 1 (``ast.yaml``), then
``flexiast.yaml`` flexified from it with knowledge flexification from the
same per-fold model, the test sweep over patch sizes and its cross-fold
summary; per-fold teacher paths (``{fold}``) for ``tome_ast_kd.yaml``.

Authors
 * fastast developers 2026
"""

import csv
import json
from types import SimpleNamespace

import pytest
import torch
from recipe_helpers import TINY_AST_MODEL, TINY_MODEL, epoch_stats, run_failing_recipe, run_recipe

from fastast_plugin.data.synthetic import write_esc50, write_speech_commands
from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.flexi import _FLEXI_PATCH_SIZES, EVAL_PATCH_SIZES
from fastast_plugin.training import precompute

WORDS = ("yes", "no", "up")
SC_TINY = (*TINY_MODEL, f"--n_classes={len(WORDS)}", "--batch_size=4")
ESC_CATEGORIES = ("dog", "rain")
ESC_SMALL = (f"--n_classes={len(ESC_CATEGORIES)}", "--batch_size=8", "--time_mask=24")
ESC_TINY = (*TINY_MODEL, *ESC_SMALL)
ESC_TINY_FROM_AUDIOSET = (*TINY_AST_MODEL, *ESC_SMALL)  # the default init_from: strides 10/10
SWEEP_SIZES = [str(size) for size in EVAL_PATCH_SIZES]


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------
# Speech Commands: distillation from a DyMN teacher
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    """3 words, 5 speakers, 3 takes (27 / 9 / 9 clips) and a tiny DyMN teacher."""
    root = tmp_path_factory.mktemp("sc_kd")
    data = root / "speech_commands_v0.02"
    write_speech_commands(str(data), WORDS, speakers=5, clips_per_speaker=3)
    torch.manual_seed(0)
    teacher = root / "dymn04_sc.pt"
    torch.save(DyMN(num_classes=len(WORDS), width_mult=0.4).state_dict(), teacher)
    return SimpleNamespace(root=root, data=data, teacher=teacher)


def _sc_kd_epoch(sc, out, *teacher_args):
    """One epoch of the Speech Commands ``tome_ast_kd.yaml`` with these teacher settings."""
    args = [
        "hparams/tome_ast_kd.yaml",
        f"--data_folder={sc.data}",
        f"--output_folder={out}",
        "--number_of_epochs=1",
        *teacher_args,
        *SC_TINY,
    ]
    run_recipe("SpeechCommands", args, f"{out}.out")
    return out


@pytest.fixture(scope="module")
def sc_online_kd(sc):
    return _sc_kd_epoch(
        sc, sc.root / "online", f"--teacher_checkpoint={sc.teacher}", "--teacher_width=0.4"
    )


def test_sc_tome_ast_kd_with_an_online_dymn_checkpoint(sc, sc_online_kd):
    (stats,) = epoch_stats((sc_online_kd / "train_log.txt").read_text())
    assert stats["train kd_clips"] == 27 and stats["train kd_missing"] == 0
    assert stats["train kd_term"] > 0
    record = json.loads((sc_online_kd / "test_metrics.json").read_text())
    assert record["teacher"] == str(sc.teacher)
    assert record["r"] == 8 and record["clips"] == 9


def test_sc_tome_ast_kd_with_precomputed_logits_missing_three_clips(sc, sc_online_kd, tmp_path):
    manifest = json.loads((sc_online_kd / "save" / "train.json").read_text())
    left_out = sorted(manifest)[:3]
    partial = tmp_path / "train_partial.json"
    partial.write_text(json.dumps({k: v for k, v in manifest.items() if k not in left_out}))
    store = tmp_path / "teacher_logits"
    precompute.main(  # fastast precompute ... / python -m fastast_plugin.training.precompute ...
        [
            "--manifest",
            str(partial),
            "--out",
            str(store),
            "--weights",
            str(sc.teacher),
            "--width-mult",
            "0.4",
            "--sample-rate",
            "16000",
            "--clip-seconds",
            "1.0",
            "--num-classes",
            "3",
        ]
    )
    out = _sc_kd_epoch(
        sc,
        tmp_path / "store_run",
        f"--teacher_logits_dir={store}",
        "--mixup_prob=0",  # with mixup, a clip whose partner is missing has no KD term either
    )
    (stats,) = epoch_stats((out / "train_log.txt").read_text())
    assert stats["train kd_missing"] == 3 and stats["train kd_clips"] == 24
    assert json.loads((out / "test_metrics.json").read_text())["teacher"] == str(store)


def test_sc_tome_ast_kd_needs_exactly_one_teacher_source(sc, tmp_path):
    output = run_failing_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast_kd.yaml",
            f"--data_folder={sc.data}",
            f"--output_folder={tmp_path / 'both'}",
            f"--teacher_checkpoint={sc.teacher}",
            f"--teacher_logits_dir={tmp_path}",
            *SC_TINY,
        ],
        tmp_path / "both.out",
    )
    assert "set exactly one teacher source" in output


def test_sc_flexiast_debug_supervised_flexification(sc, tmp_path):
    """From a fixed-patch encoder with strides 10/10 (positional grid 12 x 12)."""
    fixed = tmp_path / "fixed_patch_encoder.pt"
    torch.save(ASTEncoder("tiny224", depth=2, input_tdim=128).state_dict(), fixed)
    out = tmp_path / "flexi"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/flexiast.yaml",
            f"--data_folder={sc.data}",
            f"--output_folder={out}",
            f"--init_from={fixed}",
            "--debug",
            *SC_TINY,
        ],
        tmp_path / "flexi.out",
    )
    assert "kd_" not in (out / "train_log.txt").read_text()  # no teacher: no distillation
    record = json.loads((out / "test_metrics.json").read_text())
    assert record["patch_size"] == [16, 16] and "teacher" not in record
    assert record["train_patch_sizes"] == list(_FLEXI_PATCH_SIZES)
    rows = _read_csv(out / "patch_sweep.csv")
    assert [row["patch_size"] for row in rows] == SWEEP_SIZES
    assert all(row["clips"] == "8" for row in rows)  # debug: 2 test batches of 4
    assert (out / "patch_sweep.md").exists() and (out / "patch_sweep.png").exists()


# ---------------------------------------------------------------------------
# ESC-50: per-fold fixed-patch models, flexified; per-fold teachers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def esc(tmp_path_factory):
    """Generated ESC-50 (2 classes, 160 clips) and a fixed-patch AST for fold 1."""
    root = tmp_path_factory.mktemp("esc50_flexi")
    data = root / "ESC-50-master"
    write_esc50(str(data), ESC_CATEGORIES, sources_per_fold=8, takes_per_source=2, duration=1.0)
    fixed = root / "ast"
    run_recipe(
        "ESC50",
        [
            "hparams/ast.yaml",
            f"--data_folder={data}",
            f"--output_folder={fixed}",
            "--fold=1",
            "--number_of_epochs=3",
            "--lr=0.001",
            "--warmup_steps=10",
            "--init_from=",  # random init at the flexified model's strides, 16/16
            *ESC_TINY,
        ],
        root / "ast.out",
    )
    return SimpleNamespace(root=root, data=data, per_fold_model=fixed / "fold_{fold}" / "model.pt")


def test_esc50_knowledge_flexification_and_patch_sweep(esc):
    out = esc.root / "flexiast"
    run_recipe(
        "ESC50",
        [
            "hparams/flexiast.yaml",
            f"--data_folder={esc.data}",
            f"--output_folder={out}",
            "--fold=1",
            "--number_of_epochs=2",
            "--lr=0.0005",
            f"--init_from={esc.per_fold_model}",
            f"--teacher_checkpoint={esc.per_fold_model}",
            *ESC_TINY,
        ],
        esc.root / "flexiast.out",
    )
    fold = out / "fold_1"
    for stats in epoch_stats((fold / "train_log.txt").read_text()):
        assert stats["train kd_clips"] == 128 and stats["train kd_missing"] == 0
    record = json.loads((fold / "test_metrics.json").read_text())
    assert record["teacher"] == str(esc.per_fold_model).replace("{fold}", "1")
    assert record["patch_size"] == [16, 16] and record["clips"] == 32
    rows = _read_csv(fold / "patch_sweep.csv")
    assert [row["patch_size"] for row in rows] == SWEEP_SIZES
    assert [int(row["tokens"]) for row in rows] == [258, 146, 102, 66, 38, 27, 18, 18, 11, 6]
    assert all(row["clips"] == "32" and float(row["clips_per_s"]) > 0 for row in rows)
    base = rows[SWEEP_SIZES.index("16")]
    assert float(base["acc"]) == pytest.approx(record["acc"], abs=1e-6)  # same weights, data
    print(
        "\nESC-50 fold 1 (generated, 2 classes, chance 0.5), flexified with a teacher: "
        + ", ".join(f"p{r['patch_size']} {float(r['acc']):.2f}" for r in rows)
    )
    assert float(base["acc"]) >= 0.7, rows
    assert (fold / "patch_sweep.png").exists() and (fold / "patch_sweep.md").exists()
    summary = _read_csv(out / "cv_patch_sweep.csv")
    assert [row["patch_size"] for row in summary] == SWEEP_SIZES
    assert all(row["folds"] == "1" for row in summary)
    assert float(summary[3]["acc"]) == pytest.approx(float(base["acc"]))


def test_esc50_teacher_path_without_fold_placeholder_is_refused(esc, tmp_path):
    teacher = tmp_path / "dymn_esc50.pt"
    torch.save(DyMN(num_classes=2, width_mult=0.4).state_dict(), teacher)
    output = run_failing_recipe(
        "ESC50",
        [
            "hparams/tome_ast_kd.yaml",
            f"--data_folder={esc.data}",
            f"--output_folder={tmp_path / 'out'}",
            "--fold=1",
            f"--teacher_checkpoint={teacher}",
            *ESC_TINY_FROM_AUDIOSET,
        ],
        tmp_path / "no_placeholder.out",
    )
    assert "has no {fold} placeholder" in output


def test_esc50_missing_fold_files_stop_the_run_before_any_fold_trains(esc, tmp_path):
    out = tmp_path / "all_folds"
    output = run_failing_recipe(
        "ESC50",
        [
            "hparams/flexiast.yaml",
            f"--data_folder={esc.data}",
            f"--output_folder={out}",
            f"--init_from={esc.per_fold_model}",
            f"--teacher_checkpoint={esc.per_fold_model}",
            *ESC_TINY,
        ],
        tmp_path / "all_folds.out",
    )
    for fold in (2, 3, 4, 5):
        assert f"teacher_checkpoint for fold {fold} not found" in output
    assert "teacher_checkpoint for fold 1" not in output
    assert not (out / "fold_1").exists()


def test_esc50_tome_ast_kd_with_per_fold_dymn_teachers(esc, tmp_path):
    for fold in (1, 2):
        torch.save(
            DyMN(num_classes=2, width_mult=0.4).state_dict(), tmp_path / f"dymn_fold{fold}.pt"
        )
    out = tmp_path / "kd"
    run_recipe(
        "ESC50",
        [
            "hparams/tome_ast_kd.yaml",
            f"--data_folder={esc.data}",
            f"--output_folder={out}",
            "--fold=2",
            "--debug",
            f"--teacher_checkpoint={tmp_path / 'dymn_fold{fold}.pt'}",
            "--teacher_width=0.4",
            *ESC_TINY_FROM_AUDIOSET,
        ],
        tmp_path / "kd.out",
    )
    record = json.loads((out / "fold_2" / "test_metrics.json").read_text())
    assert record["teacher"] == str(tmp_path / "dymn_fold2.pt")
    train_log = (out / "fold_2" / "train_log.txt").read_text()
    assert all(s["train kd_missing"] == 0 for s in epoch_stats(train_log))
