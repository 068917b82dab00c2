"""Evaluate one checkpoint at many patch sizes; benchmark patch size x r.

``python -m fastast_plugin.flexi_eval --checkpoint CKPT --manifest test.json
--labels label_encoder.txt --out DIR`` reads a SpeechBrain JSON manifest
(``{id: {"wav": path, "label": name or [names]}}``), computes the features
of every batch once and runs the model on it at every patch size (so audio
is read once and machine noise hits every size alike), and writes
``flexi_eval.csv``, ``flexi_eval.md`` and ``flexi_eval.png``: accuracy, mAP,
clips/s (model forward only) and GFLOPs per clip for each patch size.

``python -m fastast_plugin.flexi_eval --bench --out DIR`` times random
inputs instead and writes ``flexi_bench.csv`` / ``flexi_bench.md``: clips/s
and GFLOPs for every (patch size, r) pair, plus a patch size x r table.

Authors
 * fastast developers 2026
"""

import argparse
import csv
import json
import os
import time
from typing import List, NamedTuple

import torch
from speechbrain.dataio.dataio import read_audio, read_audio_info
from speechbrain.utils.logger import get_logger

from fastast_plugin import dataio
from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.bench import (
    DTYPES,
    autocast_context,
    count_gflops,
    synchronize,
    time_side_by_side,
)
from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.features import KaldiFbank
from fastast_plugin.flexi import EVAL_PATCH_SIZES, to_pair
from fastast_plugin.merge import token_counts
from fastast_plugin.metrics import accuracy

__all__ = [
    "ManifestClip",
    "average_precision",
    "benchmark_patch_sizes",
    "evaluate_patch_sizes",
    "load_labels",
    "parse_patch_size",
    "plot_patch_sweep",
    "product_table",
    "read_manifest",
    "summarize_patch_sweeps",
    "write_table",
]

logger = get_logger(__name__)

# AST's AudioSet normalisation (also used for ESC-50 by AST's recipes).
AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
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
SWEEP_SUMMARY_COLUMNS = [
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
    labels: List[str]


def read_manifest(path, data_root=None, label_key="label"):
    """Read a SpeechBrain JSON manifest and check that every file exists.

    Arguments
    ---------
    path : str
        JSON file ``{id: {"wav": path, "label": name or [names]}}``; a
        comma-separated string is several labels.
    data_root : str, optional
        Replaces ``{data_root}`` in the paths, as SpeechBrain does.
    label_key : str
        Key of the labels in each entry.

    Returns
    -------
    list of ManifestClip
        In manifest order.

    Example
    -------
    >>> import soundfile as sf, numpy as np
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "a.wav"), np.zeros(1600), 16000)
    >>> with open(tmp / "m.json", "w") as f:
    ...     json.dump({"a": {"wav": "{data_root}/a.wav", "label": "dog,cat"}}, f)
    >>> read_manifest(str(tmp / "m.json"), data_root=str(tmp))[0].labels
    ['dog', 'cat']
    """
    try:
        data = dataio.read_manifest(path)
    except ValueError as err:  # json.JSONDecodeError
        raise ValueError(f"manifest {path!r} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not data:
        raise ValueError(
            f"manifest {path!r} must be a non-empty JSON object "
            "{id: {'wav': path, 'label': ...}}"
        )
    return [
        _manifest_clip(path, key, entry, data_root, label_key)
        for key, entry in data.items()
    ]


def _manifest_clip(path, clip_id, entry, data_root, label_key):
    if not isinstance(entry, dict) or "wav" not in entry or label_key not in entry:
        raise ValueError(
            f"manifest {path!r}: entry {clip_id!r} must hold 'wav' and "
            f"{label_key!r}, got {entry!r}"
        )
    wav = str(entry["wav"])
    if data_root is not None:
        wav = wav.replace("{data_root}", data_root)
    if not os.path.isfile(wav):
        raise FileNotFoundError(
            f"manifest {path!r}: audio of clip {clip_id!r} not found at {wav!r}"
            + ("" if data_root else " (pass --data-root for '{data_root}' paths)")
        )
    labels = entry[label_key]
    if isinstance(labels, str):
        labels = [name.strip() for name in labels.split(",") if name.strip()]
    return ManifestClip(clip_id, wav, [str(name) for name in labels])


def load_labels(path):
    """Class names in index order from a label file.

    Accepts a SpeechBrain ``CategoricalEncoder`` file (``'dog' => 0``), a
    JSON list of names or ``{name: index}`` object, or a text file with one
    name per line.

    Arguments
    ---------
    path : str
        The label file.

    Returns
    -------
    list of str
        Names; position = class index.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> encoder = CategoricalEncoder()
    >>> encoder.update_from_iterable(["dog", "cat"])
    >>> encoder.save(str(tmp / "label_encoder.txt"))
    >>> load_labels(str(tmp / "label_encoder.txt"))
    ['dog', 'cat']
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        data = json.loads(text)
        if isinstance(data, dict):
            return [name for name, _ in sorted(data.items(), key=lambda kv: int(kv[1]))]
        return [str(name) for name in data]
    if "=>" in text:
        from speechbrain.dataio.encoder import CategoricalEncoder

        encoder = CategoricalEncoder()
        encoder.load(path)
        return [encoder.ind2lab[i] for i in range(len(encoder))]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_clip(clip, sample_rate):
    """Mono waveform of a clip at ``sample_rate``."""
    try:
        rate = read_audio_info(clip.wav).sample_rate
        wav = read_audio(clip.wav)
    except Exception as err:  # backends raise many types for bad files
        raise ValueError(
            f"cannot read audio of clip {clip.clip_id!r} at {clip.wav!r}: {err}"
        ) from err
    if wav.dim() == 2:
        wav = wav.mean(dim=1)
    if wav.numel() == 0:
        raise ValueError(f"audio of clip {clip.clip_id!r} at {clip.wav!r} is empty")
    if rate != sample_rate:
        import torchaudio

        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    return wav.float()


def _targets(clips, label_index):
    targets = torch.zeros(len(clips), len(label_index))
    for row, clip in enumerate(clips):
        for name in clip.labels:
            if name not in label_index:
                raise ValueError(
                    f"clip {clip.clip_id!r} has label {name!r}, which is not in "
                    f"the label list ({len(label_index)} names)"
                )
            targets[row, label_index[name]] = 1.0
    return targets


def _batches(clips, features, label_index, batch_size):
    """(clips, features [B, T, F], targets [B, C]) per batch, on the CPU."""
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        wavs = [_read_clip(clip, features.sample_rate) for clip in chunk]
        longest = max(len(w) for w in wavs)
        padded = torch.zeros(len(wavs), longest)
        for row, wav in enumerate(wavs):
            padded[row, : len(wav)] = wav
        lens = torch.tensor([len(w) / longest for w in wavs])
        with torch.no_grad():
            feats = features(padded, lens)
        yield chunk, feats, _targets(chunk, label_index)


# ----------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------
def average_precision(scores, targets):
    """Mean over classes of the average precision (mAP), as AST reports it.

    Classes without a positive clip are skipped.

    Arguments
    ---------
    scores : torch.Tensor
        ``[clips, classes]`` logits or probabilities.
    targets : torch.Tensor
        ``[clips, classes]`` multi-hot (or one-hot) targets.

    Returns
    -------
    float
        mAP, or NaN when no class has a positive clip.

    Example
    -------
    >>> scores = torch.tensor([[0.9, 0.1], [0.5, 0.8], [0.2, 0.3]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> round(average_precision(scores, targets), 4)  # (5/6 + 1) / 2
    0.9167
    """
    values = []
    for c in range(scores.shape[1]):
        positives = targets[:, c] > 0.5
        if not positives.any():
            continue
        order = scores[:, c].argsort(descending=True)
        hits = positives[order].float()
        precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
        values.append((precision * hits).sum().item() / hits.sum().item())
    return sum(values) / len(values) if values else float("nan")


# ----------------------------------------------------------------------
# Evaluation across patch sizes
# ----------------------------------------------------------------------
def parse_patch_size(text):
    """``"16"`` -> 16, ``"16x24"`` -> (16, 24) (frequency x time).

    Arguments
    ---------
    text : str or int
        Patch size as written on the command line.

    Returns
    -------
    int or tuple of int
        What ``ASTEncoder.set_patch_size`` takes.

    Example
    -------
    >>> parse_patch_size("24"), parse_patch_size("16x48")
    (24, (16, 48))
    """
    if isinstance(text, int):
        return text
    parts = str(text).lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ValueError(
            f"patch size must be an int or FREQxTIME (e.g. 16x24), got {text!r}"
        )
    return values[0] if len(values) == 1 else to_pair(values)


def _label(size):
    """``"16"`` for a square patch, ``"16x24"`` (frequency x time) otherwise."""
    freq, time_ = to_pair(size)
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
        Autocast dtype (None for fp32).

    Returns
    -------
    list of dict
        One row per patch size with the keys of ``EVAL_COLUMNS``.

    Example
    -------
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
    stats = {
        _label(s): {"scores": [], "targets": [], "seconds": 0.0} for s in patch_sizes
    }
    first = True
    for _, feats, targets in batches:
        feats = feats.to(device)
        for size in patch_sizes:
            model.encoder.set_patch_size(size)
            if first:
                model(feats)  # warm-up: caches, allocator
            seconds, logits = _timed(model, feats, device)
            entry = stats[_label(size)]
            entry["seconds"] += seconds
            entry["scores"].append(logits.float().cpu())
            entry["targets"].append(targets)
        first = False
    if first:
        raise ValueError("evaluate_patch_sizes: no batches were given")
    return [
        _eval_row(model, size, stats[_label(size)], feats[:1]) for size in patch_sizes
    ]


def _timed(model, feats, device):
    synchronize(device)
    start = time.perf_counter()
    logits = model(feats)
    synchronize(device)
    return time.perf_counter() - start, logits


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
        "mAP": average_precision(scores, targets),
        "clips_per_s": len(scores) / max(entry["seconds"], 1e-9),
        "gflops_per_clip": count_gflops(model, one_clip),
        "clips": len(scores),
    }


# ----------------------------------------------------------------------
# Benchmark: patch size x r
# ----------------------------------------------------------------------
def benchmark_patch_sizes(
    model, feats, patch_sizes, rs=(0,), dtype=None, runs=5, device="cpu"
):
    """clips/s and GFLOPs per clip for every (patch size, r) pair.

    All pairs are timed side by side (``fastast_plugin.bench``); the
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
    >>> enc = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16,
    ...                  tstride=16, flexible="both")
    >>> model = ASTClassifier(enc, ASTHead(192, 3)).eval()
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
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
        ``SWEEP_SUMMARY_COLUMNS``: mean accuracy, its sample standard
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
    rows = []
    for size, entries in values.items():
        accs = [float(e["acc"]) for e in entries]
        mean = sum(accs) / len(accs)
        spread = (
            (sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5
            if len(accs) > 1
            else 0.0
        )
        rows.append(
            {
                "patch_size": size,
                "tokens": entries[0]["tokens"],
                "acc": mean,
                "acc_std": spread,
                "mAP": sum(float(e["mAP"]) for e in entries) / len(entries),
                "clips_per_s": sum(float(e["clips_per_s"]) for e in entries) / len(entries),
                "folds": len(entries),
            }
        )
    write_table(rows, SWEEP_SUMMARY_COLUMNS, path_stem)
    try:
        plot_patch_sweep(rows, path_stem + ".png")
    except ImportError:
        logger.warning("matplotlib is not installed: no plot %s.png", path_stem)
    return rows


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------
def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="any checkpoint from_pretrained reads")
    parser.add_argument("--manifest", help="JSON manifest to evaluate on")
    parser.add_argument("--labels", help="label file (CategoricalEncoder, JSON or lines)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--patch-sizes", nargs="+", default=[str(p) for p in EVAL_PATCH_SIZES],
        help="ints or FREQxTIME",
    )
    parser.add_argument("--flexible", choices=["both", "time", "freq"])
    parser.add_argument("--input-tdim", type=int, help="frames (default: checkpoint's)")
    parser.add_argument(
        "--r", type=int, nargs="+", default=[0],
        help="merge rates: the first for evaluation, all for --bench",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--mean", type=float, default=AUDIOSET_MEAN, help="feature mean (AudioSet's)"
    )
    parser.add_argument(
        "--std", type=float, default=AUDIOSET_STD, help="feature std (AudioSet's)"
    )
    parser.add_argument("--data-root", help="replaces {data_root} in the manifest")
    parser.add_argument("--bench", action="store_true", help="random-input benchmark")
    parser.add_argument(
        "--model-size", default="base384", help="--bench without --checkpoint"
    )
    parser.add_argument(
        "--frames", type=int, default=1024, help="--bench without --checkpoint"
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.bench and not (args.checkpoint and args.manifest and args.labels):
        parser.error(
            "evaluation needs --checkpoint, --manifest and --labels (or --bench)"
        )
    args.patch_sizes = [parse_patch_size(p) for p in args.patch_sizes]
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
    labels = load_labels(args.labels)
    n_classes = model.head.linear.out_features
    if len(labels) != n_classes:
        raise ValueError(
            f"--labels {args.labels!r} has {len(labels)} names but the model has "
            f"{n_classes} classes"
        )
    clips = read_manifest(args.manifest, args.data_root)
    enc = model.encoder
    features = KaldiFbank(
        args.sample_rate, enc.input_fdim, enc.input_tdim, args.mean, args.std
    )
    index = {name: i for i, name in enumerate(labels)}
    batches = _batches(clips, features, index, args.batch_size)
    rows = evaluate_patch_sizes(
        model, batches, args.patch_sizes, args.device, DTYPES[args.dtype]
    )
    stem = os.path.join(args.out, "flexi_eval")
    write_table(rows, EVAL_COLUMNS, stem)
    plot_patch_sweep(rows, stem + ".png")
    return rows, stem


def _run_bench(args):
    if args.checkpoint:
        model = _load_model(args)
    else:
        encoder = ASTEncoder(
            args.model_size, input_tdim=args.frames, fstride=16, tstride=16,
            flexible=args.flexible or "both",
        )
        model = ASTClassifier(encoder, ASTHead(encoder.embed_dim))
    model = model.to(args.device).eval()
    enc = model.encoder
    shape = (args.batch_size, enc.input_tdim, enc.input_fdim)
    feats = torch.randn(shape, device=args.device)
    rows = benchmark_patch_sizes(
        model, feats, args.patch_sizes, args.r, DTYPES[args.dtype], args.runs, args.device
    )
    stem = os.path.join(args.out, "flexi_bench")
    write_table(rows, BENCH_COLUMNS, stem)
    with open(stem + ".md", "a", encoding="utf-8") as f:
        f.write("\n" + product_table(rows) + "\n")
    return rows, stem


def main(argv=None):
    """Run the evaluation (or ``--bench``) and print the Markdown table."""
    args = _parse_args(argv)
    rows, stem = _run_bench(args) if args.bench else _run_eval(args)
    with open(stem + ".md", encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {stem}.csv and {stem}.md" + ("" if args.bench else f" and {stem}.png"))
    return rows


if __name__ == "__main__":
    main()
