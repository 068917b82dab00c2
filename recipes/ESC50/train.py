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
the finished folds. Each fold runs ``fastast_plugin.training.recipe.run_experiment``
(as every recipe); fold selection, the up-front file checks and the
summaries are ``fastast_plugin.training.crossval``.

Usage::

    python train.py hparams/tome_ast.yaml --data_folder=/data/ESC-50-master
    python train.py hparams/tome_ast.yaml --data_folder=... --fold=3
    python train.py hparams/tome_ast_kd.yaml --data_folder=... \\
        --teacher_checkpoint=/teachers/dymn10_esc50_fold{fold}.pt

Authors
 * fastast developers 2026
"""

import sys

import speechbrain as sb
from esc50_prepare import FOLDS, prepare_esc50

from fastast_plugin.data.dataio import classification_datasets
from fastast_plugin.training.crossval import (
    check_fold_paths,
    requested_folds,
    summarize_cross_validation,
)
from fastast_plugin.training.recipe import (
    ddp_group,
    parse_arguments,
    prepare_and_load,
    run_experiment,
)

# Settings that must be per fold when set ({fold} placeholder), and those that may be
PER_FOLD = ("teacher_checkpoint", "teacher_logits_dir")
MAY_BE_PER_FOLD = ("init_from",)


def run_fold(fold, hparams_file, run_opts, overrides):
    """Prepare (once), train and test one fold; return its hyperparameters.

    Arguments
    ---------
    fold : int
        The test fold.
    hparams_file : str
        The recipe YAML.
    run_opts : RunOptions
        SpeechBrain's run options.
    overrides : dict
        Command-line overrides (``fold`` is added).

    Returns
    -------
    dict
        The fold's loaded hyperparameters.
    """

    def prepare(settings):
        return prepare_esc50(
            data_folder=settings["data_folder"],
            save_folder=settings["prepared_folder"],
            resampled_folder=settings["resampled_folder"],
            sample_rate=settings["sample_rate"],
            download=settings["download"],
            skip_prep=settings["skip_prep"],
            on_bad_file=settings["on_bad_file"],
            strict_audio=settings["strict_audio"],
        )[fold]

    overrides = {**overrides, "fold": fold}
    hparams, overrides, manifests = prepare_and_load(hparams_file, overrides, prepare)
    sb.create_experiment_directory(
        experiment_directory=hparams["fold_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    datasets, _ = classification_datasets(
        {"train": manifests["train"], "test": manifests["test"]},
        hparams["label_encoder_file"],
        hparams["n_classes"],
        hparams["sample_rate"],
    )
    test = datasets["test"]  # also the validation set: monitoring only
    run_experiment(
        hparams, run_opts, datasets["train"], test, test, test_key=hparams["test_checkpoint_key"]
    )
    return hparams


if __name__ == "__main__":
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:])
    with ddp_group(run_opts):
        folds, overrides, settings = requested_folds(hparams_file, overrides, FOLDS)
        check_fold_paths(settings, folds, per_fold=PER_FOLD, optional=MAY_BE_PER_FOLD)
        for fold in folds:
            hparams = run_fold(fold, hparams_file, run_opts, overrides)
        if sb.utils.distributed.if_main_process():
            summarize_cross_validation(
                hparams["output_folder"],
                hparams.get("patch_sweep_file") if hparams.get("test_patch_sizes") else None,
                hparams.get("cv_patch_sweep_file"),
            )
