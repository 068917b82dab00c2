#!/usr/bin/env python3
"""Train AST, token-merged AST or FlexiAST on ESC-50 with 5-fold cross-validation, with SpeechBrain.

``--fold=all`` (the default) trains and tests the five folds one after
another, each in ``<output_folder>/fold_<k>`` (resumable: a fold that has
finished only re-runs its test), then writes the mean and standard
deviation of the test accuracy to ``<output_folder>/cv_results.{json,md}``.
``--fold=k`` runs fold ``k`` only (e.g. one fold per GPU job); the summary
then covers the folds finished so far.

For each fold, the test fold is held out; it is also the validation set,
used for monitoring only: by default (``test_checkpoint_key: epoch``) the
last epoch is tested, so no choice is made on the test fold.

Files that depend on the training folds (a distillation teacher, a
fixed-patch checkpoint fine-tuned on ESC-50) are given as one path with a
``{fold}`` placeholder, replaced by the test fold of each run; teacher paths
must have it. Every fold's file is checked before the first fold trains.
With ``test_patch_sizes`` (``flexiast.yaml``) each fold's test set is also
evaluated at every patch size, and ``cv_patch_sweep.{csv,md,png}`` averages
the finished folds.

Usage::

    python train.py hparams/tome_ast.yaml --data_folder=/data/ESC-50-master
    python train.py hparams/tome_ast.yaml --data_folder=... --fold=3
    python train.py hparams/tome_ast_kd.yaml --data_folder=... \\
        --teacher_checkpoint=/teachers/dymn10_esc50_fold{fold}.pt

Authors
 * fastast developers 2026
"""

import glob
import os
import sys

import ruamel.yaml
import speechbrain as sb
from esc50_prepare import FOLDS, prepare_esc50
from hyperpyyaml import load_hyperpyyaml

from fastast_plugin.brain import AudioClassifierBrain, parse_arguments
from fastast_plugin.dataio import check_fold_paths, classification_datasets
from fastast_plugin.flexi_eval import summarize_patch_sweeps
from fastast_plugin.metrics import summarize_folds

# Settings that must be per fold when set ({fold} placeholder), and that may be
PER_FOLD = ("teacher_checkpoint", "teacher_logits_dir")
MAY_BE_PER_FOLD = ("init_from",)


def requested_folds(hparams_file, overrides):
    """Folds to run, the overrides as a dict, and the top-level settings, built without any object.

    Arguments
    ---------
    hparams_file : str
        The recipe YAML.
    overrides : str
        Command-line overrides (YAML).

    Returns
    -------
    folds : list of int
        The folds to run.
    overrides : dict
        The overrides, ready to receive ``fold``.
    settings : dict
        Top-level YAML values with the overrides applied (tagged values
        such as ``!ref`` unresolved).
    """
    yaml = ruamel.yaml.YAML(typ="rt")  # keeps !new / !ref tags unbuilt
    with open(hparams_file, encoding="utf-8") as fin:
        settings = dict(yaml.load(fin))
    overrides = dict(ruamel.yaml.YAML(typ="safe").load(overrides) or {}) if overrides else {}
    settings.update(overrides)
    fold = settings.get("fold")
    if str(fold) == "all":
        return list(FOLDS), overrides, settings
    if fold not in FOLDS:
        raise ValueError(f"fold must be one of {list(FOLDS)} or 'all', got {fold!r}")
    return [fold], overrides, settings


def run_fold(fold, hparams_file, run_opts, overrides):
    """Prepare (once), train and test one fold; return its hyperparameters."""
    overrides = {**overrides, "fold": fold}
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["fold_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    manifests = sb.utils.distributed.run_on_main(
        prepare_esc50,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["prepared_folder"],
            "resampled_folder": hparams["resampled_folder"],
            "sample_rate": hparams["sample_rate"],
            "download": hparams["download"],
            "skip_prep": hparams["skip_prep"],
            "on_bad_file": hparams["on_bad_file"],
        },
    )[fold]
    datasets, _ = classification_datasets(
        {"train": manifests["train"], "test": manifests["test"]},
        hparams["label_encoder_file"],
        hparams["n_classes"],
        hparams["sample_rate"],
    )
    brain = AudioClassifierBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["test"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["valid_dataloader_options"],
    )
    brain.evaluate(
        datasets["test"],
        max_key=hparams["test_checkpoint_key"],
        test_loader_kwargs=dict(hparams["valid_dataloader_options"]),
    )
    if hparams.get("test_patch_sizes"):
        brain.evaluate_patch_sizes(
            datasets["test"],
            hparams["test_patch_sizes"],
            hparams["patch_sweep_file"],
            test_loader_kwargs=dict(hparams["valid_dataloader_options"]),
        )
    return hparams


if __name__ == "__main__":
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    folds, overrides, settings = requested_folds(hparams_file, overrides)
    check_fold_paths(settings, folds, per_fold=PER_FOLD, optional=MAY_BE_PER_FOLD)
    for fold in folds:
        hparams = run_fold(fold, hparams_file, run_opts, overrides)
    if sb.utils.distributed.if_main_process():
        finished = sorted(
            glob.glob(os.path.join(hparams["output_folder"], "fold_*", "test_metrics.json"))
        )
        summarize_folds(
            {os.path.basename(os.path.dirname(p)): p for p in finished},
            hparams["output_folder"],
        )
        if hparams.get("test_patch_sizes"):
            name = os.path.basename(hparams["patch_sweep_file"]) + ".csv"
            sweeps = sorted(glob.glob(os.path.join(hparams["output_folder"], "fold_*", name)))
            summarize_patch_sweeps(
                {os.path.basename(os.path.dirname(p)): p for p in sweeps},
                hparams["cv_patch_sweep_file"],
            )
