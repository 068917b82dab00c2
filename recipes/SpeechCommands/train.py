#!/usr/bin/env python3
"""Train AST, token-merged AST or FlexiAST on Speech Commands V2 (35 words) with SpeechBrain.

Prepares the official splits (``sc_prepare.py``), trains with
``fastast_plugin.training.recipe.run_experiment`` (``AudioClassifierBrain``), keeps the checkpoint with the
best validation accuracy and evaluates it on the test list, writing
``test_metrics.json`` (and the tested weights, ``model.pt``) into the output
folder. With ``test_patch_sizes`` in the YAML (``flexiast.yaml``) the test
set is then evaluated at every patch size (``patch_sweep.{csv,md,png}``).
Distillation (``tome_ast_kd.yaml``, knowledge flexification in
``flexiast.yaml``) is configured in the YAML alone.

Usage::

    python train.py hparams/tome_ast.yaml --data_folder=/data/speech_commands_v0.02
    torchrun --nproc_per_node=4 train.py hparams/tome_ast.yaml --data_folder=...
    python train.py hparams/tome_ast.yaml --data_folder=... --test_only --r=16 \\
        --test_metrics_file=results/r16.json   # same weights, more merging
    python train.py hparams/flexiast.yaml --data_folder=... \\
        --init_from=results/SpeechCommands/ast/1234/model.pt
    python train.py hparams/tome_ast_kd.yaml --data_folder=... \\
        --teacher_checkpoint=/teachers/dymn10_sc.pt

Authors
 * fastast developers 2026
"""

import sys

import speechbrain as sb
from sc_prepare import prepare_speech_commands

from fastast_plugin.data.dataio import classification_datasets
from fastast_plugin.training.recipe import (
    ddp_group,
    parse_arguments,
    prepare_and_load,
    run_experiment,
)


def prepare(settings):
    """Prepare the manifests with the YAML's settings."""
    return prepare_speech_commands(
        data_folder=settings["data_folder"],
        save_folder=settings["save_folder"],
        download=settings["download"],
        skip_prep=settings["skip_prep"],
        on_bad_file=settings["on_bad_file"],
        sample_rate=settings["sample_rate"],
        strict_audio=settings["strict_audio"],
    )


if __name__ == "__main__":
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:])
    with ddp_group(run_opts):
        hparams, overrides, manifests = prepare_and_load(hparams_file, overrides, prepare)
        sb.create_experiment_directory(
            experiment_directory=hparams["output_folder"],
            hyperparams_to_save=hparams_file,
            overrides=overrides,
        )
        datasets, _ = classification_datasets(
            manifests,
            hparams["label_encoder_file"],
            hparams["n_classes"],
            hparams["sample_rate"],
        )
        run_experiment(
            hparams,
            run_opts,
            datasets["train"],
            datasets["valid"],
            datasets["test"],
            test_key="acc",
        )
