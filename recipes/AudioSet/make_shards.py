#!/usr/bin/env python3
"""Write WebDataset shards from a prepared AudioSet manifest, or measure how fast clips load.

``write``: one sample per clip (the audio file's bytes, its labels and,
with ``--teacher_logits_dir``, its teacher logits), ``--clips_per_shard``
clips per tar shard, plus ``shards.json``; train on them with
``train.py ... --train_shards=<out>`` (``fastast_plugin.data.shards``). Write at
least ``processes x loader workers`` shards (every worker reads its own).

``bench``: clips per second delivered by the training loader from the
files of a manifest and from shards, with the same batch size and number
of workers (audio decoded and resampled to 16 kHz, as in training).

Usage::

    python make_shards.py write results/AudioSet/tome_ast/1234/prepared/train.json \\
        /data/audioset_shards/balanced --clips_per_shard 1000
    python make_shards.py bench results/.../prepared/train.json /data/audioset_shards/balanced \\
        --class_labels results/.../prepared/class_labels_indices.csv --num_workers 2

Authors
 * fastast developers 2026
"""

import argparse
import json
import sys

import speechbrain as sb

from fastast_plugin.data.audioset import multilabel_datasets, read_class_labels
from fastast_plugin.data.shards import measure_throughput, shard_loader, write_shards
from fastast_plugin.training.teachers import LogitsStore


def main(argv):
    """Parse the command line and run ``write`` or ``bench``.

    Arguments
    ---------
    argv : list of str
        Arguments (without the program name).

    Returns
    -------
    dict
        What was printed (the shard index, or the throughput figures).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write shards from a manifest")
    write.add_argument("manifest", help="prepared train.json (or any manifest)")
    write.add_argument("out", help="output folder")
    write.add_argument("--clips_per_shard", type=int, default=1000)
    write.add_argument(
        "--teacher_logits_dir", default="", help="a LogitsStore to store with each clip"
    )
    write.add_argument("--seed", type=int, default=0, help="order of the clips in the shards")
    bench = commands.add_parser("bench", help="clips/s from files and from shards")
    bench.add_argument("manifest")
    bench.add_argument("shards")
    bench.add_argument("--class_labels", required=True, help="class_labels_indices.csv")
    bench.add_argument("--num_workers", type=int, default=2)
    bench.add_argument("--batch_size", type=int, default=12)
    bench.add_argument("--batches", type=int, default=50)
    bench.add_argument("--shuffle_buffer", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "write":
        teacher = LogitsStore(args.teacher_logits_dir) if args.teacher_logits_dir else None
        result = write_shards(args.manifest, args.out, args.clips_per_shard, teacher, args.seed)
    else:
        n_classes = len(read_class_labels(args.class_labels))
        files = multilabel_datasets({"train": args.manifest}, args.class_labels, n_classes)["train"]
        loader = sb.dataio.dataloader.make_dataloader(
            files, batch_size=args.batch_size, num_workers=args.num_workers, shuffle=True
        )
        result = {
            "files": measure_throughput(loader, args.batches),
            "shards": measure_throughput(
                shard_loader(
                    args.shards,
                    args.class_labels,
                    n_classes,
                    args.batch_size,
                    num_workers=args.num_workers,
                    shuffle_buffer=args.shuffle_buffer,
                ),
                args.batches,
            ),
            "num_workers": args.num_workers,
            "shuffle_buffer": args.shuffle_buffer,
            "batch_size": args.batch_size,
        }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
