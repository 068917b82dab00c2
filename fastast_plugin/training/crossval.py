"""K-fold cross-validation: which folds to run, per-fold files checked up front, summaries.

A cross-validation recipe (ESC-50) trains one model per test fold, each in
``<output_folder>/fold_<k>``, by loading its YAML once per fold with the
override ``fold: k``. This module holds what is shared around that loop:

* ``requested_folds``: the folds the ``fold`` setting asks for (one, or
  ``all``), read from the YAML without building any object;
* ``check_fold_paths``: every fold's files (``{fold}`` patterns, see
  ``fastast_plugin.data.dataio.fold_path``) exist, before the first fold trains
  (a registry name, ``fastast_plugin.weights.registry``, is no per-fold file: it is
  resolved, from the cache or downloaded, where the weights are loaded);
* ``_summarize_folds`` and ``summarize_cross_validation``: the mean and
  standard deviation of the test metric over the finished folds, and the
  mean of their patch-size sweeps (``fastast_plugin.evaluation.sweep``).

The per-fold run itself stays in the recipe's ``train.py``, because
``speechbrain.create_experiment_directory`` copies the file of its caller
into each experiment folder.

Authors
 * fastast developers 2026
"""

import glob
import json
import os
import statistics

import ruamel.yaml
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.dataio import fold_path
from fastast_plugin.evaluation.sweep import summarize_patch_sweeps
from fastast_plugin.weights import registry

__all__ = ["check_fold_paths", "requested_folds", "summarize_cross_validation"]

logger = get_logger(__name__)

_FOLD_DIR = "fold_{fold}"
_TEST_METRICS = "test_metrics.json"


def requested_folds(hparams_file, overrides, folds):
    """Folds to run, the overrides as a dict, and the top-level settings, built without any object.

    Arguments
    ---------
    hparams_file : str
        The recipe YAML (with a top-level ``fold`` setting).
    overrides : str
        Command-line overrides (YAML).
    folds : sequence of int
        Every fold of the dataset (``fold: all`` runs them in this order).

    Returns
    -------
    folds : list of int
        The folds to run.
    overrides : dict
        The overrides, ready to receive ``fold``.
    settings : dict
        Top-level YAML values with the overrides applied (tagged values
        such as ``!ref`` unresolved).

    Example
    -------
    >>> path = getfixture("tmp_path") / "x.yaml"
    >>> _ = path.write_text("fold: all\\nlr: !ref <x>\\n")
    >>> requested_folds(str(path), "", [1, 2])[0]
    [1, 2]
    >>> requested_folds(str(path), "fold: 2", [1, 2])[:2]
    ([2], {'fold': 2})
    """
    yaml = ruamel.yaml.YAML(typ="rt")  # keeps !new / !ref tags unbuilt
    with open(hparams_file, encoding="utf-8") as fin:
        settings = dict(yaml.load(fin))
    overrides = dict(ruamel.yaml.YAML(typ="safe").load(overrides) or {}) if overrides else {}
    settings.update(overrides)
    fold = settings.get("fold")
    if str(fold) == "all":
        return list(folds), overrides, settings
    if fold not in folds:
        raise ValueError(f"fold must be one of {list(folds)} or 'all', got {fold!r}")
    return [fold], overrides, settings


def check_fold_paths(settings, folds, per_fold=(), optional=()):
    """Checks before any fold trains that every per-fold file exists.

    A cross-validation run loads its hyperparameters once per fold, so a
    missing file for fold 4 would only show after folds 1-3 have trained.
    This checks all folds up front. Values that are not plain strings
    (e.g. unresolved ``!ref`` expressions) and registry names of published
    weights (the same for every fold, fetched when loaded) are left to the
    per-fold load.

    Arguments
    ---------
    settings : dict
        Setting name to value (the top-level YAML values with overrides).
    folds : list of int
        The folds that will run.
    per_fold : sequence of str
        Settings that must hold ``{fold}`` when set (see ``fold_path``).
    optional : sequence of str
        Settings that may hold ``{fold}``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "t1.pt").write_text("")
    >>> check_fold_paths({"teacher": str(tmp / "t{fold}.pt")}, [1], per_fold=["teacher"])
    >>> check_fold_paths({"teacher": str(tmp / "t{fold}.pt")}, [1, 2], per_fold=["teacher"])
    Traceback (most recent call last):
    ...
    FileNotFoundError: teacher for fold 2 not found: ...t2.pt
    >>> check_fold_paths({"init": "ast-audioset-10-10-0.4593"}, [1, 2], optional=["init"])
    """
    missing = []
    for name in (*per_fold, *optional):
        pattern = settings.get(name)
        if not isinstance(pattern, str) or not pattern:
            continue
        for fold in folds:
            path = fold_path(pattern, fold, required=name in per_fold, name=name)
            if registry.find(path) is None and not os.path.exists(path):
                missing.append(f"{name} for fold {fold} not found: {path}")
    if missing:
        raise FileNotFoundError("; ".join(missing))


def _summarize_folds(metric_files, output_folder, metric="acc"):
    """Mean and standard deviation of a metric over cross-validation folds.

    Writes ``cv_results.json`` and a Markdown table ``cv_results.md`` into
    ``output_folder``.

    Arguments
    ---------
    metric_files : dict
        Fold name to the path of that fold's ``test_metrics.json``.
    output_folder : str
        Where the summary files go.
    metric : str
        Key of the metric in the ``test_metrics.json`` files.

    Returns
    -------
    dict
        ``folds`` (fold name to value), ``mean``, ``std`` (sample standard
        deviation, 0 for one fold) and ``metric``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> files = {}
    >>> for fold, acc in (("fold_1", 0.9), ("fold_2", 0.8)):
    ...     files[fold] = str(tmp / f"{fold}.json")
    ...     with open(files[fold], "w") as f:
    ...         json.dump({"acc": acc}, f)
    >>> summary = _summarize_folds(files, str(tmp))
    >>> round(summary["mean"], 3), round(summary["std"], 4)
    (0.85, 0.0707)
    """
    values = {}
    for fold, path in metric_files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"summarize_folds: no test metrics for {fold} at {path}; run that fold first"
            )
        with open(path) as f:
            record = json.load(f)
        if metric not in record:
            raise KeyError(f"summarize_folds: {path} has no {metric!r}, keys are {sorted(record)}")
        values[fold] = float(record[metric])
    if not values:
        raise ValueError("summarize_folds: no folds given")
    mean = statistics.mean(values.values())
    std = statistics.stdev(values.values()) if len(values) > 1 else 0.0
    summary = {"metric": metric, "folds": values, "mean": mean, "std": std}
    os.makedirs(output_folder, exist_ok=True)
    with open(os.path.join(output_folder, "cv_results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    lines = [f"| fold | {metric} |", "|---|---|"]
    lines += [f"| {fold} | {value:.4f} |" for fold, value in values.items()]
    lines.append(f"| mean ± std | {mean:.4f} ± {std:.4f} |")
    with open(os.path.join(output_folder, "cv_results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    logger.info("Cross-validation %s over %d folds: %.4f ± %.4f", metric, len(values), mean, std)
    return summary


def _finished_fold_files(output_folder, file_name):
    """``{fold folder name: path}`` of a file every finished fold wrote.

    Arguments
    ---------
    output_folder : str
        The folder holding ``fold_<k>`` folders.
    file_name : str
        The file's name inside a fold folder.

    Returns
    -------
    dict
        Sorted by fold folder.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "fold_2").mkdir()
    >>> _ = (tmp / "fold_2" / "test_metrics.json").write_text("{}")
    >>> list(_finished_fold_files(str(tmp), "test_metrics.json"))
    ['fold_2']
    """
    pattern = os.path.join(output_folder, _FOLD_DIR.format(fold="*"), file_name)
    return {os.path.basename(os.path.dirname(p)): p for p in sorted(glob.glob(pattern))}


def summarize_cross_validation(output_folder, patch_sweep_file=None, cv_patch_sweep_file=None):
    """Summaries over the finished folds: test accuracy and (optionally) patch-size sweeps.

    Arguments
    ---------
    output_folder : str
        The folder holding ``fold_<k>/test_metrics.json``; ``cv_results.json``
        and ``cv_results.md`` are written there (``_summarize_folds``).
    patch_sweep_file : str, optional
        The stem each fold's sweep was written to (only its file name
        matters); with ``cv_patch_sweep_file``, their mean goes to
        ``<cv_patch_sweep_file>.{csv,md,png}``.
    cv_patch_sweep_file : str, optional
        Output stem of the mean sweep.

    Returns
    -------
    dict
        The ``_summarize_folds`` summary.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> for fold, acc in ((1, 0.5), (2, 1.0)):
    ...     (tmp / f"fold_{fold}").mkdir()
    ...     _ = (tmp / f"fold_{fold}" / "test_metrics.json").write_text(f'{{"acc": {acc}}}')
    >>> summarize_cross_validation(str(tmp))["mean"]
    0.75
    """
    summary = _summarize_folds(_finished_fold_files(output_folder, _TEST_METRICS), output_folder)
    if patch_sweep_file and cv_patch_sweep_file:
        name = os.path.basename(patch_sweep_file) + ".csv"
        summarize_patch_sweeps(_finished_fold_files(output_folder, name), cv_patch_sweep_file)
    return summary
