"""Throughput, FLOPs and token-count benchmark for AST encoders.

``python -m fastast_plugin.evaluation.bench`` (``fastast bench``) times every candidate
side by side in one process, interleaving their runs so machine noise hits
all of them alike, and reports ratios against the first candidate of each
input shape:

* our ``ASTEncoder`` against Hugging Face's AST with the same weights
  (``--compare-hf``);
* a sweep over the merge rate ``r`` and the keep ratio (``--r``,
  ``--keep-ratio``), with tokens per block, GFLOPs counted by
  ``torch.utils.flop_counter`` and achieved GFLOP/s against this machine's
  measured matmul peak;
* back ends side by side with PyTorch eager at every setting:
  ``torch.compile`` (``--compile``), the exported ONNX model in
  onnxruntime (``--onnx``), dynamic int8 linear layers (``--int8``:
  PyTorch's, and with ``--onnx`` also ONNX Runtime's);
* the feature front ends against a per-clip loop (``--features``, from
  ``fastast_plugin.evaluation.bench_features``).

On CUDA (``--device cuda``) every call is timed between
``torch.cuda.synchronize`` calls, bf16/fp16 run under ``torch.autocast``,
and each row adds the peak memory of one call
(``torch.cuda.max_memory_allocated``). ``--gpu-table`` is the whole GPU
table in one run (base384, 1024 frames, batch 32, bf16 and fp16,
r = 0 / 16 / (16, -1) / keep 0.85 / 0.8, Hugging Face SDPA, features)::

    python -m fastast_plugin.evaluation.bench --gpu-table --json gpu.json

The CPU table of eager / compiled / ONNX Runtime / int8::

    OMP_NUM_THREADS=2 python -m fastast_plugin.evaluation.bench --frames 1024 128 \
        --batch-size 1 8 --precision fp32 --r 0 --keep-ratio 0.85 --runs 3 \
        --compile --onnx --int8

Authors
 * fastast developers 2026
"""

import argparse
import copy
import json
import sys
import tempfile

import torch
import torch.nn.functional as F
from speechbrain.utils.autocast import AMPConfig

from fastast_plugin.cli_options import add_option
from fastast_plugin.evaluation import bench_features
from fastast_plugin.evaluation.plotting import pyplot, save_figure
from fastast_plugin.evaluation.timing import (
    autocast_context,
    count_gflops,
    synchronize,
    time_side_by_side,
    timed,
)
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.features import num_frames
from fastast_plugin.models.merge import token_counts
from fastast_plugin.models.pretrained import from_pretrained

__all__ = ["main"]


def _matmul_peak_gflops(dtype=None, size=2048, repeats=5, device="cpu"):
    """Best-of-``repeats`` square matmul rate, the machine's practical ceiling.

    Arguments
    ---------
    dtype : torch.dtype, optional
        Element type (default fp32).
    size : int
        Side of the square matrices.
    repeats : int
        Number of timed multiplications.
    device : str
        Device to measure.

    Returns
    -------
    float
        GFLOP/s of the fastest multiplication.

    Example
    -------
    >>> _matmul_peak_gflops(size=64, repeats=1) > 0
    True
    """
    a = torch.randn(size, size, device=device, dtype=dtype or torch.float32)
    b = torch.randn_like(a)
    # F.linear is the path every projection of the encoder takes (on CPUs
    # without bf16 instructions it is far faster than a bf16 ``a @ b``).
    F.linear(a, b)  # warm-up
    best = min(timed(F.linear, a, b, device=device)[0] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _hf_pair(model_size, input_tdim, device):
    """Our classifier and Hugging Face's, holding the same random weights.

    Arguments
    ---------
    model_size : str
        ASTEncoder preset.
    input_tdim : int
        Input frames.
    device : str
        Device for both models.

    Returns
    -------
    tuple
        ``(ours, theirs)``, both in eval mode; each maps
        ``[batch, input_tdim, 128]`` to logits.
    """
    from transformers import ASTConfig, ASTForAudioClassification

    reference = ASTEncoder(model_size, input_tdim=input_tdim)
    config = ASTConfig(
        hidden_size=reference.embed_dim,
        num_hidden_layers=reference.depth,
        num_attention_heads=reference.blocks[0].attn.num_heads,
        intermediate_size=reference.blocks[0].mlp.fc1.out_features,
        max_length=input_tdim,
        num_labels=527,
        attn_implementation="sdpa",
    )
    theirs = ASTForAudioClassification(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        theirs.save_pretrained(folder)
        ours = from_pretrained(folder).eval()
    return ours.to(device), theirs.to(device)


def _encoder_candidates(model, settings):
    """Callables running ``model`` at each merge setting."""

    def run(setting):
        def call(feats):
            model.encoder.set_merge(**setting)
            return model(feats)

        return call

    return {_label(s): run(s) for s in settings}


def _label(setting):
    if setting.get("keep_ratio") is not None:
        return f"keep={setting['keep_ratio']}"
    r = setting["r"]
    if isinstance(r, tuple):
        return f"r=({r[0]}, {r[1]:g})"
    return f"r={r}"


def _peak_memory_mib(fn, inputs, dtype, device):
    """Peak CUDA memory of one call in MiB (``max_memory_allocated``), None on CPU.

    Arguments
    ---------
    fn : callable
        Function taking ``inputs``.
    inputs : torch.Tensor
        Its input.
    dtype : torch.dtype, optional
        Autocast dtype.
    device : str
        Device.

    Returns
    -------
    float or None

    Example
    -------
    >>> _peak_memory_mib(lambda x: x + 1, torch.ones(2), None, "cpu") is None
    True
    """
    if not str(device).startswith("cuda"):
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad(), autocast_context(dtype, device):
        fn(inputs)
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


class _Backends:
    """The models of every back end for one input length, built once.

    ``eager`` is the model itself (merge setting switched per call);
    ``compiled`` one ``torch.compile`` copy per setting (fixed ``r``, so
    each graph is static); ``onnx`` one exported file per setting run by
    onnxruntime (CPU); ``int8`` PyTorch's dynamic int8 copy
    (``quantize.quantize_linear_int8``); ``onnx-int8`` ONNX Runtime's
    dynamic int8 of each exported file.

    Arguments
    ---------
    model : ASTClassifier
        The eager model.
    settings : list of dict
        Merge settings (``set_merge`` keyword arguments).
    names : list of str
        Back ends to build: ``"eager"``, ``"compiled"``, ``"onnx"``, ``"int8"``,
        ``"onnx-int8"``.
    device : str
        Device (``onnx`` and ``int8`` need the CPU).
    folder : str
        Where ONNX files go.
    """

    def __init__(self, model, settings, names, device, folder):
        self.model, self.settings, self.names = model, settings, list(names)
        cpu_only = [n for n in self.names if n in ("onnx", "int8", "onnx-int8")]
        if cpu_only and not str(device).startswith("cpu"):
            raise ValueError(
                f"bench: {', '.join(cpu_only)} run on the CPU only; drop "
                f"--onnx/--int8 or use --device cpu (got --device {device})"
            )
        self.compiled = {}  # (setting label, dtype) -> compiled copy
        self.int8 = None
        self.onnx, self.onnx_int8 = {}, {}
        if "int8" in self.names:
            from fastast_plugin.inference.quantize import quantize_linear_int8

            self.int8 = quantize_linear_int8(model)
        if "onnx" in self.names or "onnx-int8" in self.names:
            self._export(folder)

    def _export(self, folder):
        from fastast_plugin.inference.onnx import OnnxClassifier, export_onnx
        from fastast_plugin.inference.quantize import quantize_onnx

        threads = torch.get_num_threads()
        for setting in self.settings:
            label = _label(setting)
            self.model.encoder.set_merge(**setting)
            name = label.replace("=", "").replace(" ", "").replace(",", "_")
            path = export_onnx(self.model, f"{folder}/{name}.onnx")
            if "onnx" in self.names:
                self.onnx[label] = OnnxClassifier(path, threads=threads)
            if "onnx-int8" in self.names:
                qpath = quantize_onnx(path, f"{folder}/{name}.int8.onnx")
                self.onnx_int8[label] = OnnxClassifier(qpath, threads=threads)
        self.model.encoder.set_merge()

    def _compiled(self, setting, dtype):
        key = (_label(setting), dtype)
        if key not in self.compiled:
            twin = copy.deepcopy(self.model)
            twin.encoder.set_merge(**setting)
            self.compiled[key] = torch.compile(twin, dynamic=False)
        return self.compiled[key]

    def candidates(self, dtype):
        """``{(backend, setting label): callable}`` for one precision.

        ONNX and int8 run in fp32 only (they ignore autocast), so they are
        left out of bf16/fp16 tables.
        """
        out = {}
        fp32 = dtype is None or dtype == torch.float32
        for name in self.names:
            if name != "eager" and name != "compiled" and not fp32:
                continue
            for setting in self.settings:
                label = _label(setting)
                if name == "eager":
                    out[name, label] = _at_setting(self.model, setting)
                elif name == "compiled":
                    out[name, label] = self._compiled(setting, dtype)
                elif name == "int8":
                    out[name, label] = _at_setting(self.int8, setting)
                elif name == "onnx":
                    out[name, label] = self.onnx[label]
                else:
                    out[name, label] = self.onnx_int8[label]
        return out


def _at_setting(model, setting):
    def call(feats):
        model.encoder.set_merge(**setting)
        return model(feats)

    return call


def _merge_sweep(model, feats, settings, dtype, runs, device, peak, backends=None):
    """Rows of the merge sweep for one input shape and dtype.

    Every back end of ``backends`` (eager only when None) runs every
    setting, all interleaved in one timing loop; the speed-up is over the
    first row (eager at the first setting).
    """
    if backends is None:
        candidates = {("eager", k): v for k, v in _encoder_candidates(model, settings).items()}
    else:
        candidates = backends.candidates(dtype)
    times = time_side_by_side(candidates, feats, dtype, runs, device)
    base = next(iter(times.values()))
    by_label = {_label(s): s for s in settings}
    counted = {}
    rows = []
    for (backend, name), seconds in times.items():
        setting = by_label[name]
        model.encoder.set_merge(**setting)
        if name not in counted:
            with autocast_context(dtype, device):
                gflops = count_gflops(model, feats)
            schedule = model.encoder.merge_schedule()
            tokens = token_counts(
                model.encoder.num_tokens, schedule, model.encoder.num_prefix_tokens
            )
            counted[name] = (gflops, tokens)
        gflops, tokens = counted[name]
        rows.append(
            {
                "backend": backend,
                "setting": name,
                "tokens_last_block": tokens[-1],
                "tokens_per_block": tokens,
                "gflops": gflops,
                "clips_per_s": feats.shape[0] / seconds,
                "speedup": base / seconds,
                "achieved_gflops_per_s": gflops / seconds,
                "share_of_peak": gflops / seconds / peak,
                "peak_mem_mib": _peak_memory_mib(candidates[backend, name], feats, dtype, device),
            }
        )
    model.encoder.set_merge()
    return rows


def _teacher_rows(batch, runs, device, seconds=10.0):
    """DyMN widths next to base384 AST (r = 0 and 16) on ``seconds`` clips.

    DyMN sees EfficientAT's 32 kHz mel input, AST its 16 kHz Kaldi fbank;
    feature extraction is excluded from both timings.

    Arguments
    ---------
    batch : int
        Clips per call.
    runs : int
        Timed rounds.
    device : str
        Device.
    seconds : float
        Clip length.

    Returns
    -------
    list of dict
        One row per model: clips/s and GMACs per clip.
    """
    mel_frames = DyMNFrontEnd().num_frames(int(seconds * 32000))
    mel = torch.randn(batch, 1, 128, mel_frames, device=device)
    frames = num_frames(int(seconds * 16000))
    fbank = torch.randn(batch, frames, 128, device=device)
    models = {
        f"dymn{int(w * 10):02d}": DyMN(width_mult=w).eval().to(device) for w in (0.4, 1.0, 2.0)
    }
    encoder = ASTEncoder("base384", input_tdim=frames)
    ast = ASTClassifier(encoder, ASTHead(encoder.embed_dim)).eval().to(device)

    def ast_at(r):
        def call(_):
            ast.encoder.r = r
            return ast(fbank)

        return call

    calls = {name: (lambda _, m=m: m(mel)) for name, m in models.items()}
    calls.update({"ast_base384_r0": ast_at(0), "ast_base384_r16": ast_at(16)})
    times = time_side_by_side(calls, None, None, runs, device)
    rows = []
    for name, seconds_per_call in times.items():
        gflops = count_gflops(calls[name], None)
        rows.append(
            {
                "model": name,
                "clips_per_s": batch / seconds_per_call,
                "gmacs_per_clip": gflops / 2 / batch,
            }
        )
    ast.encoder.r = 0
    return rows


_GPU_TABLE = [
    "--device",
    "cuda",
    "--model-size",
    "base384",
    "--frames",
    "1024",
    "--batch-size",
    "32",
    "--precision",
    "bf16",
    "fp16",
    "--runs",
    "10",
    "--r",
    "0",
    "16",
    "16,-1",
    "--keep-ratio",
    "0.85",
    "0.8",
    "--compare-hf",
    "--features",
]


def _parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(
        prog=prog or "python -m fastast_plugin.evaluation.bench",
        description=__doc__.splitlines()[0],
        epilog="Arguments not listed here are passed on to the features "
        "benchmark (fastast_plugin.evaluation.bench_features) with --features.",
    )
    parser.add_argument("--model-size", default="base384")
    parser.add_argument("--frames", type=int, nargs="*", default=[128, 1024])
    add_option(parser, "batch_size", default=[2], many=True, aliases=["--batch"])
    add_option(parser, "precision", default=["fp32", "bf16"], many=True, aliases=["--dtypes"])
    parser.add_argument("--runs", type=int, default=5)
    add_option(parser, "device", default="cpu")
    parser.add_argument("--compare-hf", action="store_true")
    add_option(parser, "r", default=[0], many=True, note="one row each")
    add_option(parser, "keep_ratio", default=[], many=True, note="one row each, after the r rows")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the model at each fixed setting",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also time the exported ONNX model in onnxruntime (CPU)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also time dynamic int8 linear layers (PyTorch's; with --onnx also ONNX Runtime's)",
    )
    parser.add_argument(
        "--features",
        action="store_true",
        help="also time the feature front ends (batched vs per-clip loop); "
        "with --frames and no value, only them",
    )
    parser.add_argument(
        "--gpu-table",
        action="store_true",
        help="the whole GPU table in one run: " + " ".join(_GPU_TABLE),
    )
    parser.add_argument(
        "--teachers",
        action="store_true",
        help="only compare DyMN teachers with base384 AST on 10 s clips",
    )
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument("--plot", help="write the speed-up curve to this PNG")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu-table" in argv:
        argv = _GPU_TABLE + argv  # later values override the preset
    args, rest = parser.parse_known_args(argv)
    if rest and not args.features:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.feature_argv = rest
    return args


def main(argv=None, prog=None):
    """Run the benchmark and print Markdown tables.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); ``--help`` lists them.
    prog : str, optional
        Program name for ``--help`` (``fastast bench`` from ``fastast``).

    Returns
    -------
    list of dict
        The rows printed (also written with ``--json``).
    """
    args = _parse_args(argv, prog)
    if args.teachers:
        rows = _teacher_rows(args.batch_size[0], args.runs, args.device)
        print("| model | clips/s | GMACs per clip |\n|---|---|---|")
        for row in rows:
            print(f"| {row['model']} | {row['clips_per_s']:.2f} | {row['gmacs_per_clip']:.2f} |")
        return rows
    settings = [{"r": r} for r in args.r]
    settings += [{"keep_ratio": k} for k in args.keep_ratio]
    if not settings:
        settings = [{"r": 0}]
    backends = ["eager"] + [
        name
        for name, on in (
            ("compiled", args.compile),
            ("onnx", args.onnx),
            ("int8", args.int8),
            ("onnx-int8", args.onnx and args.int8),
        )
        if on
    ]
    results = []
    if args.frames:
        peaks = {
            d: _matmul_peak_gflops(AMPConfig.from_name(d).dtype, device=args.device)
            for d in args.precision
        }
        print("matmul peak: " + ", ".join(f"{d} {p:.0f} GFLOP/s" for d, p in peaks.items()))
        with tempfile.TemporaryDirectory() as folder:
            for frames in args.frames:
                results += _frames_rows(args, frames, settings, backends, peaks, folder)
    if args.features:
        results += _feature_rows(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        _plot_speedups(results, args.plot)
    return results


def _frames_rows(args, frames, settings, backend_names, peaks, folder):
    """Every table of one input length: batches x precisions."""
    results = []
    if args.compare_hf:
        ours, theirs = _hf_pair(args.model_size, frames, args.device)
    else:
        encoder = ASTEncoder(args.model_size, input_tdim=frames)
        ours = ASTClassifier(encoder, ASTHead(encoder.embed_dim)).eval()
        ours = ours.to(args.device)
    backends = _Backends(ours, settings, backend_names, args.device, folder)
    for batch in args.batch_size:
        feats = torch.randn(batch, frames, 128, device=args.device)
        for dtype_name in args.precision:
            dtype = AMPConfig.from_name(dtype_name).dtype
            meta = {"frames": frames, "dtype": dtype_name, "batch": batch}
            if args.compare_hf:
                results.append(_hf_row(meta, ours, theirs, feats, dtype, args))
            rows = _merge_sweep(
                ours,
                feats,
                settings,
                dtype,
                args.runs,
                args.device,
                peaks[dtype_name],
                backends,
            )
            results += [dict(meta, kind="merge", **row) for row in rows]
            _print_sweep(meta, rows, args.device)
    return results


def _hf_row(meta, ours, theirs, feats, dtype, args):
    """Hugging Face's AST (SDPA attention) against ours, same weights, r = 0."""
    ours.encoder.set_merge()
    calls = {
        "huggingface": lambda x, hf=theirs: hf(input_values=x).logits,
        "fastast": ours,
    }
    times = time_side_by_side(calls, feats, dtype, args.runs, args.device)
    batch = feats.shape[0]
    row = dict(meta, kind="hf_vs_ours")
    row["hf_clips_per_s"] = batch / times["huggingface"]
    row["ours_clips_per_s"] = batch / times["fastast"]
    row["ratio_ours_over_hf"] = times["huggingface"] / times["fastast"]
    row["hf_peak_mem_mib"] = _peak_memory_mib(calls["huggingface"], feats, dtype, args.device)
    row["ours_peak_mem_mib"] = _peak_memory_mib(ours, feats, dtype, args.device)
    memory = ""
    if row["ours_peak_mem_mib"] is not None:
        memory = (
            f", peak memory HF {row['hf_peak_mem_mib']:.0f} MiB, ours "
            f"{row['ours_peak_mem_mib']:.0f} MiB"
        )
    print(
        f"{_args_line(meta)}: HF {row['hf_clips_per_s']:.2f} "
        f"clips/s, ours {row['ours_clips_per_s']:.2f} clips/s, "
        f"ours/HF speed ratio {row['ratio_ours_over_hf']:.2f}{memory}"
    )
    return row


def _feature_rows(args):
    """The features benchmark (``fastast_plugin.evaluation.bench_features``), same device."""
    argv = ["--device", args.device, "--runs", str(args.runs)] + args.feature_argv
    return [dict(row, kind="features") for row in bench_features.main(argv)]


def _print_sweep(meta, rows, device="cpu"):
    cuda = str(device).startswith("cuda")
    scale, unit = (1e3, "TFLOP/s") if cuda else (1.0, "GFLOP/s")
    print(f"\n{_args_line(meta)}")
    print(
        f"| back end | setting | tokens after each block | GFLOPs | clips/s "
        f"| speed-up | {unit} | of peak |" + (" peak MiB |" if cuda else "")
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""))
    for row in rows:
        tokens = " ".join(str(n) for n in row["tokens_per_block"])
        memory = f" {row['peak_mem_mib']:.0f} |" if cuda else ""
        rate = row["achieved_gflops_per_s"] / scale
        print(
            f"| {row.get('backend', 'eager')} | {row['setting']} | {tokens} "
            f"| {row['gflops']:.1f} | {row['clips_per_s']:.2f} | {row['speedup']:.2f}x "
            f"| {rate:.{2 if cuda else 0}f} | {row['share_of_peak']:.0%} |{memory}"
        )


def _args_line(meta):
    """One-line description of a benchmark configuration."""
    return f"{meta['frames']} frames, {meta['dtype']}, batch {meta['batch']}"


def _plot_speedups(results, path):
    """Speed-up against FLOP reduction, one curve per input shape and dtype.

    Arguments
    ---------
    results : list of dict
        Rows from ``main``.
    path : str
        PNG file to write.
    """
    fig, ax = pyplot().subplots(figsize=(6, 4))
    groups = {}
    for row in results:
        if row["kind"] == "merge" and row.get("backend", "eager") == "eager":
            groups.setdefault(_args_line(row), []).append(row)
    for name, rows in groups.items():
        base = rows[0]["gflops"]
        ax.plot(
            [base / r["gflops"] for r in rows],
            [r["speedup"] for r in rows],
            "o-",
            label=name,
        )
    lim = max([1.0] + [r["speedup"] for rows in groups.values() for r in rows])
    ax.plot([1, lim], [1, lim], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("FLOP reduction (x)")
    ax.set_ylabel("measured speed-up (x)")
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
