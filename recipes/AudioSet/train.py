#!/usr/bin/env python3
"""Train AST, token-merged AST, a distilled ToMe-AST or FlexiAST on AudioSet (multi-label), with SpeechBrain.

Prepare (``audioset_prepare.py``: segment lists or AST's datafiles, clips
found under their naming schemes, missing and unreadable audio reported)
-> datasets with multi-hot targets -> ``fastast_plugin.training.recipe.run_experiment``
(BCE, mAP and d-prime over all DDP ranks, checkpoints by validation mAP,
the last epochs' weights averaged as AST does, tested on the evaluation
set). Options of this recipe only:

* ``balanced_sampling: True``: AST's class-balanced sampler for the full
  set (``fastast_plugin.data.sampling``; SpeechBrain wraps it for DDP);
* ``train_shards: <folder>``: train from WebDataset shards written by
  ``make_shards.py`` (``fastast_plugin.data.shards``), split across processes and
  workers, for a nominal epoch of ``clips_per_epoch`` clips.

Usage::

    python train.py hparams/tome_ast.yaml --data_folder=/data/audioset
    torchrun --nproc_per_node=8 train.py hparams/ast.yaml --data_folder=... \\
        --subset=full --balanced_sampling=True --lr=1e-5 --number_of_epochs=5 \\
        --lr_decay_start=2 --lr_decay_every=1 --average_last_epochs=5

Authors
 * fastast developers 2026
"""

import sys

import speechbrain as sb
from audioset_prepare import prepare_audioset
from hyperpyyaml import load_hyperpyyaml

from fastast_plugin.data.audioset import multilabel_datasets
from fastast_plugin.data.dataio import read_manifest
from fastast_plugin.data.sampling import balanced_sampler
from fastast_plugin.training.recipe import ddp_group, parse_arguments, run_experiment


def training_data(hparams, train_set, class_labels_file, manifest):
    """The training set: the dataset (optionally with AST's sampler) or a shard loader.

    Arguments
    ---------
    hparams : dict
        The loaded YAML (``train_shards``, ``balanced_sampling``, ...).
    train_set : DynamicItemDataset
        The prepared training clips.
    class_labels_file : str
        ``class_labels_indices.csv``.
    manifest : str
        The training manifest (labels for the sampler's weights).

    Returns
    -------
    Dataset or DataLoader
        What ``run_experiment`` trains on (``train_dataloader_options`` get
        the sampler when one is used).
    """
    if hparams["train_shards"]:
        if hparams["balanced_sampling"]:
            raise ValueError(
                "balanced_sampling draws from the prepared files; shards are read "
                "uniformly (resampled): set balanced_sampling: False with train_shards"
            )
        from fastast_plugin.data.shards import shard_loader

        return shard_loader(
            hparams["train_shards"],
            class_labels_file,
            hparams["n_classes"],
            hparams["batch_size"],
            num_workers=hparams["num_workers"],
            clips_per_epoch=hparams["clips_per_epoch"],
            epoch_counter=hparams["epoch_counter"],
            sample_rate=hparams["sample_rate"],
            shuffle_buffer=hparams["shuffle_buffer"],
            seed=hparams["seed"],
        )
    if hparams["balanced_sampling"]:
        entries = read_manifest(manifest)
        labels = [entries[clip_id]["labels"] for clip_id in train_set.data_ids]
        options = dict(hparams["train_dataloader_options"])
        options.pop("shuffle", None)
        options["sampler"] = balanced_sampler(labels, seed=hparams["seed"])
        hparams["train_dataloader_options"] = options
    return train_set


if __name__ == "__main__":
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:])
    with ddp_group(run_opts):
        with open(hparams_file, encoding="utf-8") as fin:
            hparams = load_hyperpyyaml(fin, overrides)
        sb.create_experiment_directory(
            experiment_directory=hparams["output_folder"],
            hyperparams_to_save=hparams_file,
            overrides=overrides,
        )
        ast_files = {"train": hparams["ast_train_datafile"], "eval": hparams["ast_eval_datafile"]}
        if any(ast_files.values()) and not all(ast_files.values()):
            raise ValueError(
                f"give both ast_train_datafile and ast_eval_datafile, or neither; got {ast_files}"
            )
        prepared = sb.utils.distributed.run_on_main(
            prepare_audioset,
            kwargs={
                "data_folder": hparams["data_folder"],
                "save_folder": hparams["prepared_folder"],
                "subset": hparams["subset"],
                "audio_folder": hparams["audio_folder"],
                "ast_datafiles": ast_files if all(ast_files.values()) else None,
                "skip_prep": hparams["skip_prep"],
                "on_bad_file": hparams["on_bad_file"],
            },
        )
        datasets = multilabel_datasets(
            {"train": prepared["train"], "eval": prepared["eval"]},
            prepared["class_labels"],
            hparams["n_classes"],
            hparams["sample_rate"],
        )
        train = training_data(
            hparams, datasets["train"], prepared["class_labels"], prepared["train"]
        )
        evaluation = datasets["eval"]  # AST validates and tests on the evaluation set
        run_experiment(
            hparams,
            run_opts,
            train,
            evaluation,
            evaluation,
            test_key=hparams["test_checkpoint_key"],
        )
