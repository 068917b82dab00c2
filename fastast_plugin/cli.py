"""The ``fastast`` command: one entry point for the package's tools.

``fastast COMMAND --help`` describes each command:

* ``fastast classify MODEL_DIR PATH ...``: labels of audio files or folders
  (``fastast_plugin.inference.classify``);
* ``fastast export SOURCE OUT_DIR``: an inference folder from any AST
  checkpoint (``fastast_plugin.inference.export``);
* ``fastast bench``: side-by-side throughput / FLOPs / tokens-per-block
  benchmark (``fastast_plugin.evaluation.bench``);
* ``fastast visualize AUDIO --out x.png``: merged-token groups over the
  spectrogram (``fastast_plugin.evaluation.visualize``);
* ``fastast sweep --checkpoint CKPT --manifest test.json --labels
  label_encoder.txt --out DIR``: one checkpoint evaluated at every patch size
  (``fastast_plugin.evaluation.sweep``), written as ``flexi_eval.csv`` / ``.md`` /
  ``.png``; ``fastast sweep --bench --out DIR`` times random inputs for every
  (patch size, r) pair instead (``flexi_bench.csv`` / ``.md``);
* ``fastast precompute --manifest train.json --out DIR --weights t.pt``: a
  teacher's logits for distillation (``fastast_plugin.training.precompute``);
* ``fastast weights [--download NAME]``: the named published weights
  (``fastast_plugin.weights.registry``), usable wherever a checkpoint path is;
* ``fastast stats train.json``: ``fbank_mean`` / ``fbank_std`` of a dataset
  for a recipe YAML (``fastast_plugin.data.stats``).

``python -m fastast_plugin.evaluation.bench`` (``visualize``, ``precompute``) runs the
same code as the matching ``fastast`` command.

Authors
 * fastast developers 2026
"""

import argparse
import os
import sys
from collections.abc import Sequence

import torch
from speechbrain.utils.autocast import AMPConfig

from fastast_plugin.data import stats
from fastast_plugin.data.labels import label_index, read_labels
from fastast_plugin.evaluation import bench, visualize
from fastast_plugin.evaluation.sweep import (
    BENCH_COLUMNS,
    EVAL_COLUMNS,
    benchmark_patch_sizes,
    evaluate_patch_sizes,
    feature_batches,
    manifest_clips,
    plot_patch_sweep,
    product_table,
    write_table,
)
from fastast_plugin.inference import classify, export
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD, KaldiFbank
from fastast_plugin.models.flexi import EVAL_PATCH_SIZES
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.training import precompute
from fastast_plugin.weights import registry
from fastast_plugin.weights.resize import parse_patch_size

__all__ = ["COMMANDS", "main", "run", "sweep_main"]


# ----------------------------------------------------------------------
# fastast sweep
# ----------------------------------------------------------------------
def _sweep_args(argv, prog):
    parser = argparse.ArgumentParser(
        prog=prog or "fastast sweep",
        description="Evaluate one checkpoint at many patch sizes (or --bench: time "
        "every patch size x r pair on random inputs).",
    )
    parser.add_argument("--checkpoint", help="any checkpoint from_pretrained reads")
    parser.add_argument("--manifest", help="JSON manifest to evaluate on")
    parser.add_argument(
        "--labels",
        help="label file: class_labels_indices.csv (names or mids), label_encoder.txt, "
        "JSON or one name per line",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--patch-sizes",
        nargs="+",
        default=[str(p) for p in EVAL_PATCH_SIZES],
        help="ints or FREQxTIME",
    )
    parser.add_argument("--flexible", choices=["both", "time", "freq"])
    parser.add_argument("--input-tdim", type=int, help="frames (default: checkpoint's)")
    parser.add_argument(
        "--r",
        type=int,
        nargs="+",
        default=[0],
        help="merge rates: the first for evaluation, all for --bench",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=bench.PRECISIONS, default="fp32")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--mean", type=float, default=AUDIOSET_MEAN, help="feature mean (AudioSet's)"
    )
    parser.add_argument("--std", type=float, default=AUDIOSET_STD, help="feature std (AudioSet's)")
    parser.add_argument("--data-root", help="replaces {data_root} in the manifest")
    parser.add_argument("--bench", action="store_true", help="random-input benchmark")
    parser.add_argument("--model-size", default="base384", help="--bench without --checkpoint")
    parser.add_argument("--frames", type=int, default=1024, help="--bench without --checkpoint")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.bench and not (args.checkpoint and args.manifest and args.labels):
        parser.error("evaluation needs --checkpoint, --manifest and --labels (or --bench)")
    try:
        # A single size stays an int: it then applies to the flexible axes only.
        args.patch_sizes = [
            parse_patch_size(p, "--patch-sizes", as_pair=False) for p in args.patch_sizes
        ]
    except ValueError as err:
        parser.error(str(err))
    return args


def _load_model(args):
    # A fixed-patch checkpoint is evaluated flexibly too (FlexiAST's baselines).
    overrides = {"flexible": args.flexible or "both"}
    if args.input_tdim:
        overrides["input_tdim"] = args.input_tdim
    return from_pretrained(args.checkpoint, **overrides)


def _run_eval(args):
    model = _load_model(args)
    model.encoder.set_merge(r=args.r[0])
    labels = read_labels(args.labels)
    n_classes = model.head.linear.out_features
    if len(labels) != n_classes:
        raise ValueError(
            f"--labels {args.labels!r} has {len(labels)} names but the model has "
            f"{n_classes} classes"
        )
    clips = manifest_clips(args.manifest, args.data_root)
    enc = model.encoder
    features = KaldiFbank(args.sample_rate, enc.input_fdim, enc.input_tdim, args.mean, args.std)
    index = label_index(args.labels)
    batches = feature_batches(clips, features, index, args.batch_size)
    dtype = AMPConfig.from_name(args.dtype).dtype
    rows = evaluate_patch_sizes(model, batches, args.patch_sizes, args.device, dtype)
    stem = os.path.join(args.out, "flexi_eval")
    write_table(rows, EVAL_COLUMNS, stem)
    plot_patch_sweep(rows, stem + ".png")
    return rows, stem


def _run_bench(args):
    if args.checkpoint:
        model = _load_model(args)
    else:
        encoder = ASTEncoder(
            args.model_size,
            input_tdim=args.frames,
            fstride=16,
            tstride=16,
            flexible=args.flexible or "both",
        )
        model = ASTClassifier(encoder, ASTHead(encoder.embed_dim))
    model = model.to(args.device).eval()
    enc = model.encoder
    shape = (args.batch_size, enc.input_tdim, enc.input_fdim)
    feats = torch.randn(shape, device=args.device)
    dtype = AMPConfig.from_name(args.dtype).dtype
    rows = benchmark_patch_sizes(
        model, feats, args.patch_sizes, args.r, dtype, args.runs, args.device
    )
    stem = os.path.join(args.out, "flexi_bench")
    write_table(rows, BENCH_COLUMNS, stem)
    with open(stem + ".md", "a", encoding="utf-8") as f:
        f.write("\n" + product_table(rows) + "\n")
    return rows, stem


def sweep_main(argv: Sequence[str] | None = None, prog: str | None = None):
    """``fastast sweep``: run the patch-size evaluation (or ``--bench``), print its table.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); ``--help`` lists them.
    prog : str, optional
        Program name for ``--help``.

    Returns
    -------
    list of dict
        The rows written (``sweep.EVAL_COLUMNS`` or ``sweep.BENCH_COLUMNS``).

    Example
    -------
    >>> out = getfixture("tmp_path")
    >>> rows = sweep_main(["--bench", "--model-size", "tiny224", "--frames", "64",
    ...                    "--patch-sizes", "16", "32", "--runs", "1", "--batch-size", "1",
    ...                    "--out", str(out)])  # doctest: +ELLIPSIS
    | patch_size | r | ...
    >>> [row["patch_size"] for row in rows]
    ['16', '32']
    """
    args = _sweep_args(argv, prog)
    rows, stem = _run_bench(args) if args.bench else _run_eval(args)
    with open(stem + ".md", encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {stem}.csv and {stem}.md" + ("" if args.bench else f" and {stem}.png"))
    return rows


# ----------------------------------------------------------------------
# fastast
# ----------------------------------------------------------------------
# Command name -> (one-line help, its main(argv, prog)).
COMMANDS = {
    "classify": ("classify audio files or folders with an exported model", classify.main),
    "export": ("write an inference folder from any AST checkpoint", export.main),
    "bench": ("throughput / FLOPs / tokens-per-block benchmark", bench.main),
    "visualize": ("merged-token groups of one clip as a PNG", visualize.main),
    "sweep": ("evaluate or time one checkpoint at many patch sizes", sweep_main),
    "precompute": ("write a teacher's logits over a manifest", precompute.main),
    "weights": ("list the named published weights, or --download one", registry.main),
    "stats": ("feature mean/std of a dataset, as YAML lines for a recipe", stats.main),
}


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastast",
        description="Fast Audio Spectrogram Transformers: the package's tools. "
        "`fastast COMMAND --help` describes a command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _) in COMMANDS.items():
        # Each command parses its own arguments (its module's main).
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def run(argv: Sequence[str] | None = None):
    """Dispatch ``COMMAND [arguments]`` to the command's ``main`` and return its result.

    Arguments
    ---------
    argv : list of str, optional
        ``COMMAND [arguments]`` (default ``sys.argv[1:]``).

    Returns
    -------
    object
        What the command's ``main`` returned.

    Example
    -------
    >>> run(["visualize", "--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the command name is parsed here; its arguments belong to its main.
    command = _parser().parse_args(argv[:1]).command
    _, command_main = COMMANDS[command]
    return command_main(argv[1:], prog=f"fastast {command}")


def main(argv: Sequence[str] | None = None):
    """The ``fastast`` console script: ``run``, then an exit status.

    Arguments
    ---------
    argv : list of str, optional
        ``COMMAND [arguments]`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The command's status if it returns one (``classify``: 1 when a file
        failed), 2 when the inputs are wrong (a missing or mismatched file,
        an impossible setting, a missing optional package; the message says
        which), else 0.
    """
    try:
        result = run(argv)
    except (OSError, ValueError, ImportError) as error:
        # Our own checks name the file or argument; a traceback adds nothing.
        print(f"fastast: error: {error}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
