"""``fastast classify``: tag audio files and folders with an exported model.

One line per file (``path<TAB>label (score), ...``), or with ``--json`` one
JSON object per file (``path``, ``labels``, ``scores``, and ``windows`` with
start/end times and the best label of each window, for files longer than the
model's input). Files shorter than the model's minimum (a click) are
classified padded with silence (``AudioClassifier.min_samples``); empty or
unreadable files are reported on stderr by name and skipped, the others
still classified; the exit status is 1 when any was skipped, 0 otherwise.

Authors
 * fastast developers 2026
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fastast_plugin.cli_options import add_option
from fastast_plugin.inference.classifier import AudioClassifier
from fastast_plugin.models.ast import LENGTH_MODES

__all__ = ["main"]

# Extensions collected from folders (files named explicitly are always tried).
_AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au"}


def _audio_files(paths):
    """Files to classify: explicit files as given, audio files under folders (sorted).

    Arguments
    ---------
    paths : list of str
        Files and folders.

    Returns
    -------
    list of pathlib.Path

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> (root / "a").mkdir(); _ = (root / "a" / "x.wav").write_bytes(b""); _ = (root / "n.txt").write_text("")
    >>> [p.name for p in _audio_files([root])]
    ['x.wav']
    """
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in _AUDIO_EXTENSIONS)
            files += sorted(p for p in found if p.is_file())
        else:
            files.append(path)  # a missing file is reported by the classifier
    return files


def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog or "fastast classify",
        description="Classify audio files (any rate, channels and length) with an "
        "exported model folder (fastast export) or a hub id.",
    )
    parser.add_argument("model", help="exported model folder or hub id")
    parser.add_argument("paths", nargs="+", help="audio files or folders (recursive)")
    parser.add_argument("--top-k", type=int, default=3, help="labels per file (default 3)")
    parser.add_argument(
        "--threshold", type=float, help="multi-label: keep labels at least this probable"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file")
    add_option(parser, "r", note="default: the exported setting")
    add_option(parser, "keep_ratio")
    add_option(parser, "patch_size")
    parser.add_argument(
        "--length-mode", choices=LENGTH_MODES, help="pad (AST) or native (own length)"
    )
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the encoder and head (SpeechBrain's run_opts compile)",
    )
    backend.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (CPU)")
    backend.add_argument(
        "--onnx",
        metavar="FILE",
        help="run this ONNX export (fastast export --onnx) in ONNX Runtime; it keeps "
        "the merging and patch size it was exported with",
    )
    add_option(parser, "precision", default="fp32", note="SpeechBrain's run_opts precision")
    add_option(parser, "batch_size", default=8, note="windows of the files")
    add_option(parser, "device", default="cpu")
    parser.add_argument("--savedir", help="where hub models are cached")
    return parser


def _load_classifier(args):
    """The interface of ``args.model`` with the command line's run-time knobs."""
    run_opts = {"device": args.device, "precision": args.precision}
    if args.compile:  # the features' host-side length logic stays eager
        run_opts.update(compile=True, compile_module_keys=["embedding_model", "classifier"])
    classifier = AudioClassifier.from_hparams(
        source=args.model, savedir=args.savedir, run_opts=run_opts
    )
    if args.int8:
        classifier.use_int8()
    if args.onnx is not None:
        return classifier.use_onnx(args.onnx)
    if args.r is not None or args.keep_ratio is not None:
        classifier.set_merge(r=args.r or 0, keep_ratio=args.keep_ratio)
    if args.patch_size is not None:
        classifier.set_patch_size(args.patch_size)
    if args.length_mode is not None:
        classifier.set_length_mode(args.length_mode)
    return classifier


def _window_record(window, classifier):
    """A window's start, end and best label, as probabilities."""
    probs = window.scores if classifier.multi_label else window.scores.softmax(-1)
    best = int(probs.argmax())
    label = classifier.hparams.label_encoder.ind2lab[best]
    return {
        "start": round(window.start, 3),
        "end": round(window.end, 3),
        "label": label,
        "score": round(float(probs[best]), 4),
    }


def _line(result, classifier, as_json):
    if as_json:
        record = {"path": result.path, "labels": result.labels, "scores": result.scores}
        if len(result.windows) > 1:
            record["windows"] = [_window_record(w, classifier) for w in result.windows]
        return json.dumps(record)
    tags = ", ".join(f"{label} ({score:.3f})" for label, score in zip(result.labels, result.scores))
    return f"{result.path}\t{tags}"


def main(argv: Sequence[str] | None = None, prog: str | None = None):
    """Run ``fastast classify``; returns the exit status (1 if a file failed).

    ``argv``: the arguments (default ``sys.argv[1:]``, ``--help`` lists them);
    ``prog``: the program name shown by ``--help``.

    Returns
    -------
    int
        0 when every file was classified, 1 otherwise.
    """
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be >= 1, got {args.top_k}")
    fixed = [
        f"--{name.replace('_', '-')}"
        for name in ("r", "keep_ratio", "patch_size", "length_mode")
        if getattr(args, name) is not None
    ]
    if args.onnx is not None and fixed:
        parser.error(
            f"--onnx runs the settings it was exported with; {' '.join(fixed)} "
            "cannot change them (export again with those settings)"
        )
    if args.int8 or args.onnx:
        if args.device != "cpu":
            parser.error(f"--int8 and --onnx run on the CPU, got --device {args.device}")
        if args.precision != "fp32":
            parser.error(
                f"--int8 and --onnx run their own precision, got --precision {args.precision}"
            )
    files = _audio_files(args.paths)
    if not files:
        parser.error(f"no audio files found in {args.paths}")
    classifier = _load_classifier(args)
    results = classifier.classify_files(
        files, batch_size=args.batch_size, top_k=args.top_k, threshold=args.threshold
    )
    failed = 0
    for result in results:
        if result.error is not None:
            failed += 1
            print(f"error: {result.error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": result.path, "error": result.error}))
            continue
        print(_line(result, classifier, args.json))
    if failed:
        print(f"{failed} of {len(results)} files could not be classified", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
