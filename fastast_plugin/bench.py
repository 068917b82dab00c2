"""Throughput, FLOPs and token-count benchmark for AST encoders.

``python -m fastast_plugin.bench`` times every candidate side by side in one
process, interleaving their runs so machine noise hits all of them alike,
and reports ratios against the first candidate of each input shape:

* our ``ASTEncoder`` against Hugging Face's AST with the same weights
  (``--compare-hf``);
* a sweep over the merge rate ``r`` and the keep ratio (``--r``,
  ``--keep-ratio``), with tokens per block, GFLOPs counted by
  ``torch.utils.flop_counter`` and achieved GFLOP/s against this machine's
  measured matmul peak.

Authors
 * fastast developers 2026
"""

import argparse
import contextlib
import json
import math
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.merge import token_counts

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def matmul_peak_gflops(dtype=None, size=2048, repeats=5, device="cpu"):
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
    >>> matmul_peak_gflops(size=64, repeats=1) > 0
    True
    """
    a = torch.randn(size, size, device=device, dtype=dtype or torch.float32)
    b = torch.randn_like(a)
    # F.linear is the path every projection of the encoder takes (on CPUs
    # without bf16 instructions it is far faster than a bf16 ``a @ b``).
    F.linear(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        F.linear(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def count_gflops(fn, *args):
    """GFLOPs of one call, counted by ``torch.utils.flop_counter``.

    Arguments
    ---------
    fn : callable
        Function to run once.
    *args
        Its arguments.

    Returns
    -------
    float
        Billions of floating-point operations.

    Example
    -------
    >>> count_gflops(torch.nn.Linear(10, 10), torch.randn(1, 10))
    2e-07
    """
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops() / 1e9


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    """Two matmuls of attention: ``Q K^T`` and ``softmax(.) V``."""
    *batch, queries, head_dim = query_shape
    keys, value_dim = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * queries * keys * (head_dim + value_dim)


# PyTorch's counter knows the CUDA attention kernels but not the CPU one,
# so attention would count as free on the CPU.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops
}


def synchronize(device):
    """Wait for queued kernels on ``device`` (a no-op on the CPU).

    Arguments
    ---------
    device : str or torch.device
        Device whose queue to drain.

    Example
    -------
    >>> synchronize("cpu")
    """
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def autocast_context(dtype, device):
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing for fp32.

    Arguments
    ---------
    dtype : torch.dtype, optional
        Autocast dtype; None runs in fp32.
    device : str or torch.device
        Device type for autocast.

    Returns
    -------
    context manager

    Example
    -------
    >>> with autocast_context(torch.bfloat16, "cpu"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def time_side_by_side(candidates, inputs, dtype=None, runs=5, device="cpu"):
    """Median seconds per call of each candidate, runs interleaved.

    Arguments
    ---------
    candidates : dict
        Name to callable taking ``inputs``.
    inputs : torch.Tensor
        The batch every candidate gets.
    dtype : torch.dtype, optional
        Autocast dtype (None for fp32).
    runs : int
        Timed rounds; each round calls every candidate once.
    device : str
        Device (for synchronisation).

    Returns
    -------
    dict
        Name to median seconds per call.

    Example
    -------
    >>> times = time_side_by_side({"id": lambda x: x}, torch.ones(1), runs=2)
    >>> sorted(times)
    ['id']
    """
    samples = {name: [] for name in candidates}
    with torch.no_grad(), autocast_context(dtype, device):
        for fn in candidates.values():
            fn(inputs)  # warm-up
        for _ in range(runs):
            for name, fn in candidates.items():
                synchronize(device)
                start = time.perf_counter()
                fn(inputs)
                synchronize(device)
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def hf_pair(model_size, input_tdim, device):
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

    from fastast_plugin.checkpoints import from_pretrained

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
    return f"r={setting['r']}"


def merge_sweep(model, feats, settings, dtype, runs, device, peak):
    """Rows of the merge sweep for one input shape and dtype."""
    candidates = _encoder_candidates(model, settings)
    times = time_side_by_side(candidates, feats, dtype, runs, device)
    base = next(iter(times.values()))
    rows = []
    for setting, (name, seconds) in zip(settings, times.items()):
        model.encoder.set_merge(**setting)
        with autocast_context(dtype, device):
            gflops = count_gflops(model, feats)
        schedule = model.encoder.merge_schedule()
        tokens = token_counts(
            model.encoder.num_tokens, schedule, model.encoder.num_prefix_tokens
        )
        rows.append(
            {
                "setting": name,
                "tokens_last_block": tokens[-1],
                "tokens_per_block": tokens,
                "gflops": gflops,
                "clips_per_s": feats.shape[0] / seconds,
                "speedup": base / seconds,
                "achieved_gflops_per_s": gflops / seconds,
                "share_of_peak": gflops / seconds / peak,
            }
        )
    model.encoder.set_merge()
    return rows


def teacher_rows(batch, runs, device, seconds=10.0):
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
    from fastast_plugin.dymn import DyMN, DyMNFrontEnd
    from fastast_plugin.features import num_frames

    mel_frames = DyMNFrontEnd().num_frames(int(seconds * 32000))
    mel = torch.randn(batch, 1, 128, mel_frames, device=device)
    frames = num_frames(int(seconds * 16000))
    fbank = torch.randn(batch, frames, 128, device=device)
    models = {
        f"dymn{int(w * 10):02d}": DyMN(width_mult=w).eval().to(device)
        for w in (0.4, 1.0, 2.0)
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


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", default="base384")
    parser.add_argument("--frames", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=DTYPES)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-hf", action="store_true")
    parser.add_argument("--r", type=int, nargs="*", default=[0])
    parser.add_argument("--keep-ratio", type=float, nargs="*", default=[])
    parser.add_argument(
        "--teachers", action="store_true",
        help="only compare DyMN teachers with base384 AST on 10 s clips",
    )
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument("--plot", help="write the speed-up curve to this PNG")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmark and print Markdown tables."""
    args = _parse_args(argv)
    if args.teachers:
        rows = teacher_rows(args.batch, args.runs, args.device)
        print("| model | clips/s | GMACs per clip |\n|---|---|---|")
        for row in rows:
            print(f"| {row['model']} | {row['clips_per_s']:.2f} | {row['gmacs_per_clip']:.2f} |")
        return rows
    settings = [{"r": r} for r in args.r]
    settings += [{"keep_ratio": k} for k in args.keep_ratio]
    peaks = {d: matmul_peak_gflops(DTYPES[d], device=args.device) for d in args.dtypes}
    print("matmul peak: " + ", ".join(f"{d} {p:.0f} GFLOP/s" for d, p in peaks.items()))
    results = []
    for frames in args.frames:
        feats = torch.randn(args.batch, frames, 128, device=args.device)
        if args.compare_hf:
            ours, theirs = hf_pair(args.model_size, frames, args.device)
        else:
            encoder = ASTEncoder(args.model_size, input_tdim=frames)
            ours = ASTClassifier(encoder, ASTHead(encoder.embed_dim)).eval()
            ours = ours.to(args.device)
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            meta = {"frames": frames, "dtype": dtype_name, "batch": args.batch}
            if args.compare_hf:
                times = time_side_by_side(
                    {
                        "huggingface": lambda x, hf=theirs: hf(input_values=x).logits,
                        "fastast": ours,
                    },
                    feats,
                    dtype,
                    args.runs,
                    args.device,
                )
                row = dict(meta, kind="hf_vs_ours")
                row["hf_clips_per_s"] = args.batch / times["huggingface"]
                row["ours_clips_per_s"] = args.batch / times["fastast"]
                row["ratio_ours_over_hf"] = times["huggingface"] / times["fastast"]
                results.append(row)
                print(
                    f"{frames} frames {dtype_name}: HF {row['hf_clips_per_s']:.2f} "
                    f"clips/s, ours {row['ours_clips_per_s']:.2f} clips/s, "
                    f"ours/HF speed ratio {row['ratio_ours_over_hf']:.2f}"
                )
            rows = merge_sweep(
                ours, feats, settings, dtype, args.runs, args.device, peaks[dtype_name]
            )
            results += [dict(meta, kind="merge", **row) for row in rows]
            _print_sweep(meta, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot_speedups(results, args.plot)
    return results


def _print_sweep(meta, rows):
    print(f"\n{args_line(meta)}")
    print("| setting | tokens after each block | GFLOPs | clips/s | speed-up | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        tokens = " ".join(str(n) for n in row["tokens_per_block"])
        print(
            f"| {row['setting']} | {tokens} | {row['gflops']:.1f} "
            f"| {row['clips_per_s']:.2f} | {row['speedup']:.2f}x "
            f"| {row['achieved_gflops_per_s']:.0f} | {row['share_of_peak']:.0%} |"
        )


def args_line(meta):
    """One-line description of a benchmark configuration."""
    return f"{meta['frames']} frames, {meta['dtype']}, batch {meta['batch']}"


def plot_speedups(results, path):
    """Speed-up against FLOP reduction, one curve per input shape and dtype.

    Arguments
    ---------
    results : list of dict
        Rows from ``main``.
    path : str
        PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    groups = {}
    for row in results:
        if row["kind"] == "merge":
            groups.setdefault(args_line(row), []).append(row)
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
