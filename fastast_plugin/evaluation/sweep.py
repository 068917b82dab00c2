"""Patch-size sweeps: one checkpoint evaluated at many patch sizes; patch size x r timing.

``evaluate_patch_sizes`` runs a flexible model (FlexiAST, Feng et al.,
Interspeech 2023) on every batch at every patch size in turn, so features are
computed once and machine noise hits every size alike, and reports accuracy,
mAP, clips/s (model forward only) and GFLOPs per clip for each size.
``benchmark_patch_sizes`` times random inputs for every (patch size, r) pair.
``write_table``, ``plot_patch_sweep`` and ``summarize_patch_sweeps`` write the
results (CSV, Markdown, PNG; the mean over cross-validation folds). Recipes
call ``evaluate_patch_sizes`` after their test; ``main`` is the command line,
``fastast sweep`` (``python -m fastast_plugin.evaluation.sweep``).

Authors
 * fastast developers 2026
"""

import argparse
import csv
import os
from collections.abc import Sequence
from typing import NamedTuple

import torch
from speechbrain.utils.autocast import AMPConfig
from speechbrain.utils.data_utils import batch_pad_right
from speechbrain.utils.logger import get_logger

from fastast_plugin.cli_options import add_option
from fastast_plugin.data import dataio
from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.labels import label_index, read_labels
from fastast_plugin.evaluation.metrics import accuracy, mean_average_precision
from fastast_plugin.evaluation.plotting import pyplot, save_figure
from fastast_plugin.evaluation.timing import (
    autocast_context,
    count_gflops,
    time_side_by_side,
    timed,
)
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD, KaldiFbank
from fastast_plugin.models.flexi import EVAL_PATCH_SIZES
from fastast_plugin.models.merge import token_counts
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.weights.resize import parse_patch_size

__all__ = [
    "BENCH_COLUMNS",
    "EVAL_COLUMNS",
    "ManifestClip",
    "benchmark_patch_sizes",
    "evaluate_patch_sizes",
    "feature_batches",
    "main",
    "manifest_clips",
    "plot_patch_sweep",
    "product_table",
    "summarize_patch_sweeps",
    "write_table",
]

logger = get_logger(__name__)

EVAL_COLUMNS = [
    "patch_size",
    "stride",
    "grid",
    "tokens",
    "acc",
    "mAP",
    "clips_per_s",
    "gflops_per_clip",
    "clips",
]
_SWEEP_SUMMARY_COLUMNS = [
    "patch_size",
    "tokens",
    "acc",
    "acc_std",
    "mAP",
    "clips_per_s",
    "folds",
]
BENCH_COLUMNS = [
    "patch_size",
    "r",
    "tokens",
    "tokens_last_block",
    "gflops_per_clip",
    "clips_per_s",
    "speedup",
]


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
class ManifestClip(NamedTuple):
    """One manifest entry: clip id, audio path and label names.

    ``labels`` holds one name (single-label) or several (multi-label).

    Example
    -------
    >>> ManifestClip("a", "a.wav", ["dog"])
    ManifestClip(clip_id='a', wav='a.wav', labels=['dog'])
    """

    clip_id: str
    wav: str
    labels: list[str]


def manifest_clips(path, data_root=None, label_key="label"):
    """The clips of a SpeechBrain JSON manifest, every audio file checked to exist.

    Arguments
    ---------
    path : str
        JSON file ``{id: {"wav": path, "label": name or [names]}}``
        (read by ``fastast_plugin.data.dataio.read_manifest``); a comma-separated
        string is several labels.
    data_root : str, optional
        Replaces ``{data_root}`` in the paths (SpeechBrain's
        ``load_data_json`` replacements).
    label_key : str
        Key of the labels in each entry.

    Returns
    -------
    list of ManifestClip
        In manifest order.

    Example
    -------
    >>> import json, soundfile as sf, numpy as np
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "a.wav"), np.zeros(1600), 16000)
    >>> with open(tmp / "m.json", "w") as f:
    ...     json.dump({"a": {"wav": "{data_root}/a.wav", "label": "dog,cat"}}, f)
    >>> manifest_clips(str(tmp / "m.json"), data_root=str(tmp))[0].labels
    ['dog', 'cat']
    """
    replacements = None if data_root is None else {"data_root": data_root}
    data = dataio.read_manifest(path, replacements)
    if not data:
        raise ValueError(f"manifest {path!r} holds no clips")
    return [_manifest_clip(path, key, entry, data_root, label_key) for key, entry in data.items()]


def _manifest_clip(path, clip_id, entry, data_root, label_key):
    if not isinstance(entry, dict) or "wav" not in entry or label_key not in entry:
        raise ValueError(
            f"manifest {path!r}: entry {clip_id!r} must hold 'wav' and {label_key!r}, got {entry!r}"
        )
    wav = str(entry["wav"])
    if not os.path.isfile(wav):
        raise FileNotFoundError(
            f"manifest {path!r}: audio of clip {clip_id!r} not found at {wav!r}"
            + ("" if data_root else " (pass --data-root for '{data_root}' paths)")
        )
    labels = entry[label_key]
    if isinstance(labels, str):
        labels = [name.strip() for name in labels.split(",") if name.strip()]
    return ManifestClip(clip_id, wav, [str(name) for name in labels])


def _targets(clips, label_index):
    # Several names may share a class (AudioSet's display name and mid).
    n_classes = max(label_index.values()) + 1
    targets = torch.zeros(len(clips), n_classes)
    for row, clip in enumerate(clips):
        for name in clip.labels:
            if name not in label_index:
                raise ValueError(
                    f"clip {clip.clip_id!r} has label {name!r}, which is not in "
                    f"the label list ({n_classes} classes)"
                )
            targets[row, label_index[name]] = 1.0
    return targets


def feature_batches(clips, features, label_index, batch_size):
    """Features and multi-hot targets of the clips, batch by batch, on the CPU.

    Arguments
    ---------
    clips : list of ManifestClip
        From ``manifest_clips``.
    features : torch.nn.Module
        E.g. ``KaldiFbank``; maps ``(wavs, wav_lens)`` to ``[B, T, F]`` and
        has a ``sample_rate`` (clips at another rate are resampled).
    label_index : dict
        Label name to class index (``fastast_plugin.data.labels.label_index``;
        several names may share an index).
    batch_size : int
        Clips per batch.

    Yields
    ------
    tuple
        ``(clips, feats [B, T, F], targets [B, C])``, what
        ``evaluate_patch_sizes`` takes.

    Example
    -------
    >>> import soundfile as sf, numpy as np
    >>> from fastast_plugin.models.features import KaldiFbank
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> sf.write(path, np.zeros(8000), 16000)
    >>> clips = [ManifestClip("a", path, ["dog"])]
    >>> _, feats, targets = next(feature_batches(clips, KaldiFbank(target_length=64), {"dog": 0}, 4))
    >>> feats.shape, targets.tolist()
    (torch.Size([1, 64, 128]), [[1.0]])
    """
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        wavs, lens = batch_pad_right([load_audio(c.wav, features.sample_rate) for c in chunk])
        with torch.no_grad():
            feats = features(wavs, lens)
        yield chunk, feats, _targets(chunk, label_index)


# ----------------------------------------------------------------------
# Evaluation across patch sizes
# ----------------------------------------------------------------------
def _label(size):
    """``"16"`` for a square patch, ``"16x24"`` (frequency x time) otherwise."""
    freq, time_ = parse_patch_size(size)
    return str(freq) if freq == time_ else f"{freq}x{time_}"


def evaluate_patch_sizes(model, batches, patch_sizes, device="cpu", dtype=None):
    """Metrics and throughput of one model at every patch size.

    Every batch is run at every patch size in turn; only the model forward
    is timed, after one untimed warm-up per size on the first batch.

    Arguments
    ---------
    model : ASTClassifier
        A flexible model (``model.encoder.flexible != "none"`` unless only
        the base size is asked for).
    batches : iterable
        ``(clips, feats [B, T, F], targets [B, C])`` tuples.
    patch_sizes : list
        Sizes for ``set_patch_size`` (ints or ``(freq, time)``).
    device : str
        Device to run on.
    dtype : torch.dtype, optional
        Autocast dtype (None or float32: no autocast).

    Returns
    -------
    list of dict
        One row per patch size with the keys of ``EVAL_COLUMNS``.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> enc = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16,
    ...                  tstride=16, flexible="both")
    >>> model = ASTClassifier(enc, ASTHead(192, 3)).eval()
    >>> batch = ([None, None], torch.randn(2, 64, 128), torch.eye(3)[:2])
    >>> rows = evaluate_patch_sizes(model, [batch], [16, 32])
    >>> [(r["patch_size"], r["tokens"], r["clips"]) for r in rows]
    [('16', 34, 2), ('32', 10, 2)]
    """
    encoder = model.encoder
    saved = encoder.patch_size, encoder.patch_stride
    try:
        with torch.no_grad(), autocast_context(dtype, device):
            return _sweep(model.to(device).eval(), batches, patch_sizes, device)
    finally:
        encoder.set_patch_size(*saved)


def _sweep(model, batches, patch_sizes, device):
    stats = {_label(s): {"scores": [], "targets": [], "seconds": 0.0} for s in patch_sizes}
    first = True
    for _, feats, targets in batches:
        feats = feats.to(device)
        for size in patch_sizes:
            model.encoder.set_patch_size(size)
            if first:
                model(feats)  # warm-up: caches, allocator
            seconds, logits = timed(model, feats, device=device)
            entry = stats[_label(size)]
            entry["seconds"] += seconds
            entry["scores"].append(logits.float().cpu())
            entry["targets"].append(targets)
        first = False
    if first:
        raise ValueError("evaluate_patch_sizes: no batches were given")
    return [_eval_row(model, size, stats[_label(size)], feats[:1]) for size in patch_sizes]


def _eval_row(model, size, entry, one_clip):
    encoder = model.encoder
    encoder.set_patch_size(size)
    scores, targets = torch.cat(entry["scores"]), torch.cat(entry["targets"])
    return {
        "patch_size": _label(encoder.patch_size),
        "stride": "x".join(map(str, encoder.patch_stride)),
        "grid": "x".join(map(str, encoder.grid_size)),
        "tokens": encoder.num_tokens,
        "acc": accuracy(scores, targets).mean().item(),
        "mAP": mean_average_precision(scores, targets),
        "clips_per_s": len(scores) / max(entry["seconds"], 1e-9),
        "gflops_per_clip": count_gflops(model, one_clip),
        "clips": len(scores),
    }


# ----------------------------------------------------------------------
# Benchmark: patch size x r
# ----------------------------------------------------------------------
def benchmark_patch_sizes(model, feats, patch_sizes, rs=(0,), dtype=None, runs=5, device="cpu"):
    """clips/s and GFLOPs per clip for every (patch size, r) pair.

    All pairs are timed side by side (``fastast_plugin.evaluation.timing``); the
    speed-up is against the first pair.

    Arguments
    ---------
    model : ASTClassifier
        A flexible model.
    feats : torch.Tensor
        Input batch ``[batch, time, freq]`` on ``device``.
    patch_sizes : list
        Sizes for ``set_patch_size``.
    rs : list of int
        Merge rates (tokens merged per block).
    dtype : torch.dtype, optional
        Autocast dtype.
    runs : int
        Timed rounds.
    device : str
        Device (for synchronisation).

    Returns
    -------
    list of dict
        One row per pair with the keys of ``BENCH_COLUMNS``.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> model = ASTClassifier(ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16,
    ...                                  tstride=16, flexible="both"), ASTHead(192, 3))
    >>> feats = torch.randn(1, 64, 128)
    >>> rows = benchmark_patch_sizes(model, feats, [16, 32], [0, 2], runs=1)
    >>> [(r["patch_size"], r["r"], r["tokens_last_block"]) for r in rows]
    [('16', 0, 34), ('16', 2, 32), ('32', 0, 10), ('32', 2, 8)]
    """
    encoder = model.encoder
    saved = encoder.patch_size, encoder.patch_stride, encoder.r, encoder.keep_ratio
    pairs = [(size, r) for size in patch_sizes for r in rs]

    def candidate(size, r):
        def call(x):
            encoder.set_patch_size(size)
            encoder.set_merge(r=r)
            return model(x)

        return call

    names = [f"p={_label(size)} r={r}" for size, r in pairs]
    candidates = {name: candidate(*pair) for name, pair in zip(names, pairs)}
    try:
        times = time_side_by_side(candidates, feats, dtype, runs, device)
        return _bench_rows(model, feats, names, pairs, times, dtype, device)
    finally:
        encoder.set_patch_size(saved[0], saved[1])
        encoder.set_merge(r=saved[2], keep_ratio=saved[3])


def _bench_rows(model, feats, names, pairs, times, dtype, device):
    encoder = model.encoder
    base = times[names[0]]
    rows = []
    for name, (size, r) in zip(names, pairs):
        encoder.set_patch_size(size)
        encoder.set_merge(r=r)
        with autocast_context(dtype, device):
            gflops = count_gflops(model, feats) / feats.shape[0]
        counts = token_counts(
            encoder.num_tokens, encoder.merge_schedule(), encoder.num_prefix_tokens
        )
        rows.append(
            {
                "patch_size": _label(encoder.patch_size),
                "r": r,
                "tokens": encoder.num_tokens,
                "tokens_last_block": counts[-1],
                "gflops_per_clip": gflops,
                "clips_per_s": feats.shape[0] / times[name],
                "speedup": base / times[name],
            }
        )
    return rows


def product_table(rows):
    """Markdown table: one row per patch size, one column per r.

    Arguments
    ---------
    rows : list of dict
        From :func:`benchmark_patch_sizes`.

    Returns
    -------
    str
        Cells ``clips/s (GFLOPs per clip)``.

    Example
    -------
    >>> print(product_table([{"patch_size": "16", "r": 0, "clips_per_s": 2.0,
    ...                       "gflops_per_clip": 1.5}]))
    | patch \\ r | 0 |
    |---|---|
    | 16 | 2.00 clips/s (1.50 GFLOPs) |
    """
    sizes = list(dict.fromkeys(row["patch_size"] for row in rows))
    rs = list(dict.fromkeys(row["r"] for row in rows))
    cells = {(row["patch_size"], row["r"]): row for row in rows}
    lines = ["| patch \\ r | " + " | ".join(str(r) for r in rs) + " |"]
    lines.append("|---|" + "---|" * len(rs))
    for size in sizes:
        cols = []
        for r in rs:
            row = cells.get((size, r))
            cols.append("" if row is None else _bench_cell(row))
        lines.append(f"| {size} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def _bench_cell(row):
    return f"{row['clips_per_s']:.2f} clips/s ({row['gflops_per_clip']:.2f} GFLOPs)"


# ----------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------
def write_table(rows, columns, path_stem):
    """Write rows as ``<stem>.csv`` and a Markdown ``<stem>.md``.

    Arguments
    ---------
    rows : list of dict
        Table rows.
    columns : list of str
        Columns, in order.
    path_stem : str
        Output path without extension.

    Returns
    -------
    tuple of str
        The CSV and Markdown paths.

    Example
    -------
    >>> stem = str(getfixture("tmpdir") / "t")
    >>> csv_path, md_path = write_table([{"a": 1, "b": 0.5}], ["a", "b"], stem)
    >>> open(md_path).read().splitlines()[2]
    '| 1 | 0.5000 |'
    """
    csv_path, md_path = path_stem + ".csv", path_stem + ".md"
    folder = os.path.dirname(path_stem)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def _cell(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def plot_patch_sweep(rows, path):
    """Metric and clips/s against patch size (PNG).

    Arguments
    ---------
    rows : list of dict
        From :func:`evaluate_patch_sizes`.
    path : str
        PNG file to write.

    Example
    -------
    >>> path = getfixture("tmp_path") / "sweep.png"
    >>> plot_patch_sweep([{"patch_size": "16", "acc": 0.5, "mAP": 0.6, "clips_per_s": 2.0}], path)
    >>> path.stat().st_size > 0
    True
    """
    plt = pyplot()
    labels = [row["patch_size"] for row in rows]
    x = range(len(rows))
    fig, (ax_metric, ax_speed) = plt.subplots(1, 2, figsize=(10, 4))
    ax_metric.plot(x, [row["acc"] for row in rows], "o-", label="accuracy")
    ax_metric.plot(x, [row["mAP"] for row in rows], "s--", label="mAP")
    ax_metric.set_ylabel("metric")
    ax_metric.legend(fontsize=8)
    ax_speed.plot(x, [row["clips_per_s"] for row in rows], "o-")
    ax_speed.set_yscale("log")
    ax_speed.set_ylabel("clips/s (model forward)")
    for ax in (ax_metric, ax_speed):
        ax.set_xticks(list(x), labels)
        ax.set_xlabel("patch size")
    save_figure(fig, path)


def summarize_patch_sweeps(sweep_files, path_stem):
    """Mean over folds of patch-size sweeps (cross-validation).

    Arguments
    ---------
    sweep_files : dict
        Fold name to the CSV a sweep wrote (``EVAL_COLUMNS``).
    path_stem : str
        Output path without extension: ``.csv``, ``.md`` and (with
        matplotlib) ``.png`` are written.

    Returns
    -------
    list of dict
        One row per patch size (in the first file's order) with the keys of
        ``_SWEEP_SUMMARY_COLUMNS``: mean accuracy, its sample standard
        deviation over folds (0 for one fold), mean mAP and clips/s.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> for fold, acc in ((1, 0.5), (2, 1.0)):
    ...     _ = write_table([{"patch_size": "16", "tokens": 10, "acc": acc, "mAP": acc,
    ...                       "clips_per_s": 2.0}], EVAL_COLUMNS, str(tmp / f"f{fold}"))
    >>> rows = summarize_patch_sweeps(
    ...     {"fold_1": str(tmp / "f1.csv"), "fold_2": str(tmp / "f2.csv")}, str(tmp / "cv"))
    >>> rows[0]["acc"], round(rows[0]["acc_std"], 4), rows[0]["folds"]
    (0.75, 0.3536, 2)
    """
    if not sweep_files:
        raise ValueError("summarize_patch_sweeps: no sweep files given")
    values = {}
    for fold, path in sweep_files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"summarize_patch_sweeps: no sweep for {fold} at {path}")
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                values.setdefault(row["patch_size"], []).append(row)
    rows = [_summary_row(size, entries) for size, entries in values.items()]
    write_table(rows, _SWEEP_SUMMARY_COLUMNS, path_stem)
    try:
        plot_patch_sweep(rows, path_stem + ".png")
    except ImportError as err:
        logger.warning("No plot %s.png: %s", path_stem, err)
    return rows


def _summary_row(size, entries):
    """Mean (and sample std of the accuracy) of one patch size over folds."""
    accs = [float(e["acc"]) for e in entries]
    mean = sum(accs) / len(accs)
    spread = (sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5 if len(accs) > 1 else 0.0
    return {
        "patch_size": size,
        "tokens": entries[0]["tokens"],
        "acc": mean,
        "acc_std": spread,
        "mAP": sum(float(e["mAP"]) for e in entries) / len(entries),
        "clips_per_s": sum(float(e["clips_per_s"]) for e in entries) / len(entries),
        "folds": len(entries),
    }


# ----------------------------------------------------------------------
# Command line: fastast sweep
# ----------------------------------------------------------------------
def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog or "python -m fastast_plugin.evaluation.sweep",
        description="Evaluate one checkpoint at many patch sizes (or --bench: time "
        "every patch size x r pair on random inputs).",
    )
    parser.add_argument("--checkpoint", help="any checkpoint from_pretrained reads")
    parser.add_argument("--manifest", help="JSON manifest to evaluate on")
    parser.add_argument("--labels", help="label file (CategoricalEncoder, JSON or lines)")
    parser.add_argument("--out", required=True, help="output folder")
    add_option(
        parser,
        "patch_size",
        default=list(EVAL_PATCH_SIZES),
        many=True,
        note="one row each",
        aliases=["--patch-sizes"],
    )
    parser.add_argument("--flexible", choices=["both", "time", "freq"])
    parser.add_argument("--input-tdim", type=int, help="frames (default: checkpoint's)")
    add_option(
        parser, "r", default=[0], many=True, note="the first for evaluation, all for --bench"
    )
    add_option(parser, "batch_size", default=8)
    add_option(parser, "device", default="cpu")
    add_option(parser, "precision", default="fp32", aliases=["--dtype"])
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
    return parser


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
    dtype = AMPConfig.from_name(args.precision).dtype
    rows = evaluate_patch_sizes(model, batches, args.patch_size, args.device, dtype)
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
    dtype = AMPConfig.from_name(args.precision).dtype
    rows = benchmark_patch_sizes(
        model, feats, args.patch_size, args.r, dtype, args.runs, args.device
    )
    stem = os.path.join(args.out, "flexi_bench")
    write_table(rows, BENCH_COLUMNS, stem)
    with open(stem + ".md", "a", encoding="utf-8") as f:
        f.write("\n" + product_table(rows) + "\n")
    return rows, stem


def main(argv: Sequence[str] | None = None, prog: str | None = None):
    """``fastast sweep``: run the patch-size evaluation (or ``--bench``), print its table.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); ``--help`` lists them.
    prog : str, optional
        Program name for ``--help`` (``fastast sweep`` from ``fastast``).

    Returns
    -------
    list of dict
        The rows written (``EVAL_COLUMNS`` or ``BENCH_COLUMNS``).

    Example
    -------
    >>> out = getfixture("tmp_path")
    >>> rows = main(["--bench", "--model-size", "tiny224", "--frames", "64",
    ...              "--patch-size", "16", "32", "--runs", "1", "--batch-size", "1",
    ...              "--out", str(out)])  # doctest: +ELLIPSIS
    | patch_size | r | ...
    >>> [row["patch_size"] for row in rows]
    ['16', '32']
    """
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if not args.bench and not (args.checkpoint and args.manifest and args.labels):
        parser.error("evaluation needs --checkpoint, --manifest and --labels (or --bench)")
    rows, stem = _run_bench(args) if args.bench else _run_eval(args)
    with open(stem + ".md", encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {stem}.csv and {stem}.md" + ("" if args.bench else f" and {stem}.png"))
    return rows


if __name__ == "__main__":
    main()
