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

``python -m fastast_plugin.evaluation.bench`` (``sweep``, ``visualize``,
``precompute``) runs the same code as the matching ``fastast`` command. The
options several commands take (``--r``, ``--keep-ratio``, ``--patch-size``,
``--device``, ``--batch-size``, ``--precision``) are declared once, in
``fastast_plugin.cli_options``. ``fastast --traceback COMMAND ...`` shows the
full error instead of ``fastast: error: <message>``.

Authors
 * fastast developers 2026
"""

import argparse
import sys
from collections.abc import Sequence

from fastast_plugin.data import stats
from fastast_plugin.evaluation import bench, sweep, visualize
from fastast_plugin.inference import classify, export
from fastast_plugin.training import precompute
from fastast_plugin.weights import registry

__all__ = ["COMMANDS", "main", "run"]


# Command name -> (one-line help, its main(argv, prog)).
COMMANDS = {
    "classify": ("classify audio files or folders with an exported model", classify.main),
    "export": ("write an inference folder from any AST checkpoint", export.main),
    "bench": ("throughput / FLOPs / tokens-per-block benchmark", bench.main),
    "visualize": ("merged-token groups of one clip as a PNG", visualize.main),
    "sweep": ("evaluate or time one checkpoint at many patch sizes", sweep.main),
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
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on an error, show the full traceback instead of `fastast: error: <message>`",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _) in COMMANDS.items():
        # Each command parses its own arguments (its module's main).
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _parse_command(argv):
    """The global options and the command name, parsed; the command's own arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Global options come before the command name; what follows it is the command's.
    end = next((i + 1 for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    return _parser().parse_args(argv[:end]), argv[end:]


def run(argv: Sequence[str] | None = None):
    """Dispatch ``[--traceback] COMMAND [arguments]`` to the command's ``main``; its result.

    Arguments
    ---------
    argv : list of str, optional
        ``COMMAND [arguments]`` (default ``sys.argv[1:]``).

    Returns
    -------
    object
        What the command's ``main`` returned (errors are raised).

    Example
    -------
    >>> run(["visualize", "--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    args, command_argv = _parse_command(argv)
    _, command_main = COMMANDS[args.command]
    return command_main(command_argv, prog=f"fastast {args.command}")


def main(argv: Sequence[str] | None = None):
    """The ``fastast`` console script: ``run``, then an exit status.

    Arguments
    ---------
    argv : list of str, optional
        ``[--traceback] COMMAND [arguments]`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The command's status if it returns one (``classify``: 1 when a file
        failed), 2 when the inputs are wrong (a missing or mismatched file,
        an impossible setting, a missing optional package; the message says
        which), else 0. With ``--traceback`` such an error is raised instead,
        and Python prints where it came from.
    """
    show_traceback = _parse_command(argv)[0].traceback
    try:
        result = run(argv)
    except (OSError, ValueError, ImportError) as error:
        if show_traceback:
            raise
        # Our own checks name the file or argument; --traceback shows where.
        print(f"fastast: error: {error}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
