#!/usr/bin/env python3
"""Train AST, token-merged AST or FlexiAST (time-only) for VoxCeleb1 speaker identification.

Prepares the official identification split (``voxceleb_prepare.py``:
``iden_split.txt``, 1,251 speakers), trains with
``fastast_plugin.training.recipe.run_experiment`` (``AudioClassifierBrain``) on a new
random crop of every utterance in every epoch, keeps the checkpoint with the
best validation accuracy and evaluates it on the test utterances (one fixed
crop each: ``eval_crop``, see README.md), writing ``test_metrics.json`` (and
the tested weights, ``model.pt``) into the output folder. With
``test_patch_sizes`` in the YAML (``flexiast.yaml``) the test set is then
evaluated at every time patch width (``patch_sweep.{csv,md,png}``).

Usage::

    python train.py hparams/ast.yaml --data_folder=/data/voxceleb1 \\
        --init_from=/weights/vit_base_patch16_224.pth
    torchrun --nproc_per_node=4 train.py hparams/tome_ast.yaml --data_folder=...
    python train.py hparams/flexiast.yaml --data_folder=... \\
        --init_from=results/VoxCeleb/ast/1234/model.pt

Authors
 * fastast developers 2026
"""

import sys

import speechbrain as sb
from voxceleb_prepare import prepare_voxceleb

from fastast_plugin.data.dataio import classification_datasets
from fastast_plugin.training.recipe import (
    ddp_group,
    parse_arguments,
    prepare_and_load,
    run_experiment,
)


def prepare(settings):
    """Prepare the manifests with the YAML's settings."""
    return prepare_voxceleb(
        data_folder=settings["data_folder"],
        save_folder=settings["save_folder"],
        split_file=settings["split_file"] or None,
        meta_file=settings["meta_file"] or None,
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
            crop_frames=hparams["crop_frames"],
            crops={
                "train": hparams["train_crop"],
                "valid": hparams["eval_crop"],
                "test": hparams["eval_crop"],
            },
        )
        run_experiment(
            hparams,
            run_opts,
            datasets["train"],
            datasets["valid"],
            datasets["test"],
            test_key="acc",
        )
