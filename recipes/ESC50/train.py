#!/usr/bin/env python3
"""Train AST or token-merged AST on ESC-50 with 5-fold cross-validation, with SpeechBrain.

``--fold=all`` (the default) trains and tests the five folds one after
another, each in ``<output_folder>/fold_<k>`` (resumable: a fold that has
finished only re-runs its test), then writes the mean and standard
deviation of the test accuracy to ``<output_folder>/cv_results.{json,md}``.
``--fold=k`` runs fold ``k`` only (e.g. one fold per GPU job); the summary
then covers the folds finished so far.

For each fold, the test fold is held out; it is also the validation set,
used for monitoring only: by default (``test_checkpoint_key: epoch``) the
last epoch is tested, so no choice is made on the test fold.

Usage::

    python train.py hparams/tome_ast.yaml --data_folder=/data/ESC-50-master
    python train.py hparams/tome_ast.yaml --data_folder=... --fold=3

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
from fastast_plugin.dataio import classification_datasets
from fastast_plugin.metrics import summarize_folds


def requested_folds(hparams_file, overrides):
    """Folds to run and the overrides as a dict, read without building any object.

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
    """
    yaml = ruamel.yaml.YAML(typ="rt")  # keeps !new / !ref tags unbuilt
    with open(hparams_file, encoding="utf-8") as fin:
        fold = yaml.load(fin).get("fold")
    overrides = dict(ruamel.yaml.YAML(typ="safe").load(overrides) or {}) if overrides else {}
    fold = overrides.get("fold", fold)
    if str(fold) == "all":
        return list(FOLDS), overrides
    if fold not in FOLDS:
        raise ValueError(f"fold must be one of {list(FOLDS)} or 'all', got {fold!r}")
    return [fold], overrides


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
    return hparams


if __name__ == "__main__":
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    folds, overrides = requested_folds(hparams_file, overrides)
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
