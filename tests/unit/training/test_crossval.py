"""Unit tests for fastast_plugin.training.crossval: fold selection, per-fold files, summaries.

Authors
 * fastast developers 2026
"""

import json

import pytest

from fastast_plugin.evaluation.sweep import EVAL_COLUMNS, write_table
from fastast_plugin.training.crossval import (
    _summarize_folds,
    check_fold_paths,
    requested_folds,
    summarize_cross_validation,
)


def test_summarize_folds_mean_std_and_missing_fold(tmp_path):
    files = {}
    for fold, acc in enumerate((0.8, 0.9, 1.0), start=1):
        files[f"fold_{fold}"] = tmp_path / f"{fold}.json"
        files[f"fold_{fold}"].write_text(json.dumps({"acc": acc}))
    summary = _summarize_folds({k: str(v) for k, v in files.items()}, str(tmp_path))
    assert summary["mean"] == pytest.approx(0.9) and summary["std"] == pytest.approx(0.1)
    assert "0.9000 ± 0.1000" in (tmp_path / "cv_results.md").read_text()
    assert json.loads((tmp_path / "cv_results.json").read_text())["folds"]["fold_3"] == 1.0
    with pytest.raises(FileNotFoundError, match="fold_9"):
        _summarize_folds({"fold_9": str(tmp_path / "nope.json")}, str(tmp_path))
    with pytest.raises(KeyError, match="has no 'mAP'"):
        _summarize_folds({"fold_1": str(files["fold_1"])}, str(tmp_path), metric="mAP")


def test_requested_folds_reads_the_yaml_and_overrides_without_building(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("fold: all\nteacher: ''\nmodel: !new:does.not.Exist\n")
    folds, overrides, settings = requested_folds(str(path), "teacher: t{fold}.pt", [1, 2, 3])
    assert folds == [1, 2, 3] and overrides == {"teacher": "t{fold}.pt"}
    assert settings["teacher"] == "t{fold}.pt"
    assert requested_folds(str(path), "fold: 3", [1, 2, 3])[0] == [3]
    with pytest.raises(ValueError, match=r"fold must be one of \[1, 2, 3\] or 'all', got 7"):
        requested_folds(str(path), "fold: 7", [1, 2, 3])


def test_check_fold_paths_lists_every_missing_fold_and_requires_the_placeholder(tmp_path):
    (tmp_path / "t1.pt").write_text("")
    settings = {"teacher": str(tmp_path / "t{fold}.pt"), "init": str(tmp_path / "t1.pt")}
    check_fold_paths(settings, [1], per_fold=["teacher"], optional=["init"])
    with pytest.raises(FileNotFoundError, match="teacher for fold 2 not found.*fold 3"):
        check_fold_paths(settings, [1, 2, 3], per_fold=["teacher"])
    with pytest.raises(ValueError, match=r"has no \{fold\} placeholder"):
        check_fold_paths(settings, [1], per_fold=["init"])


def test_check_fold_paths_takes_a_registry_name_for_every_fold(tmp_path, monkeypatch):
    """ESC-50's default ``init_from`` (AudioSet AST by name) is no file: it is resolved when loaded."""
    monkeypatch.setenv("FASTAST_CACHE", str(tmp_path))  # an empty cache: nothing is fetched
    check_fold_paths(
        {"init_from": "ast-audioset-10-10-0.4593"}, [1, 2, 3, 4, 5], optional=["init_from"]
    )
    with pytest.raises(FileNotFoundError, match="init_from for fold 1 not found: ast-audio"):
        check_fold_paths({"init_from": "ast-audio"}, [1], optional=["init_from"])


def test_summarize_cross_validation_over_finished_folds_with_sweeps(tmp_path):
    for fold, acc in ((1, 0.5), (3, 1.0)):
        folder = tmp_path / f"fold_{fold}"
        folder.mkdir()
        (folder / "test_metrics.json").write_text(json.dumps({"acc": acc}))
        row = {"patch_size": "16", "tokens": 10, "acc": acc, "mAP": acc, "clips_per_s": 1.0}
        write_table([row], EVAL_COLUMNS, str(folder / "patch_sweep"))
    (tmp_path / "fold_2").mkdir()  # not finished: no test metrics
    summary = summarize_cross_validation(
        str(tmp_path), str(tmp_path / "fold_{fold}" / "patch_sweep"), str(tmp_path / "cv_sweep")
    )
    assert summary["folds"] == {"fold_1": 0.5, "fold_3": 1.0}
    assert "| 16 |" in (tmp_path / "cv_sweep.md").read_text()
    assert (tmp_path / "cv_sweep.csv").read_text().splitlines()[1].startswith("16,")
