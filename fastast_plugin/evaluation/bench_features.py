"""Batched front-ends against per-clip loops: ``bench --features``.

Times, in one process and with their runs interleaved (so that machine
noise hits both sides alike), each batched front-end against the per-clip
loop a user without it would write, on the same clips:

* ``KaldiFbank`` against AST's own data loader, clip by clip
  (``wav - wav.mean()``, then ``torchaudio.compliance.kaldi.fbank`` with
  AST's options; YuanGongND/ast, ``src/dataloader.py``);
* ``DyMNFrontEnd`` (16 kHz input) against EfficientAT's front-end clip by
  clip (torchaudio's ``Resample`` to 32 kHz, then ``AugmentMelSTFT``'s
  eval-mode steps: pre-emphasis as a ``conv1d``, ``torch.stft``, power,
  mel product, log; fschmid56/EfficientAT, ``models/preprocess.py``).

The loops always run on the CPU (the baseline the batched module replaces);
the batched modules run on ``--device``. Each row gives the median times,
their ratio, the ratio of the fastest runs, and the largest difference
between the two outputs.

``python -m fastast_plugin.evaluation.bench_features`` (``fastast bench --features``).

Authors
 * fastast developers 2026
"""

import argparse
import contextlib
import json
import statistics

import torch
import torch.nn.functional as F
import torchaudio

from fastast_plugin.evaluation.timing import time_interleaved
from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
from fastast_plugin.models.features import KaldiFbank

__all__ = ["efficientat_loop", "main"]


def _ast_fbank_loop(wavs):
    """AST's features clip by clip, as its data loader computes them.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveforms ``[batch, samples]`` at 16 kHz.

    Returns
    -------
    torch.Tensor
        Features ``[batch, frames, 128]``.

    Example
    -------
    >>> _ast_fbank_loop(torch.randn(2, 16000)).shape
    torch.Size([2, 98, 128])
    """
    feats = []
    for wav in wavs:
        wav = wav - wav.mean()
        feats.append(
            torchaudio.compliance.kaldi.fbank(
                wav[None],
                htk_compat=True,
                sample_frequency=16000,
                use_energy=False,
                window_type="hanning",
                num_mel_bins=128,
                dither=0.0,
                frame_shift=10,
            )
        )
    return torch.stack(feats)


def efficientat_loop(wavs, frontend):
    """EfficientAT's front-end clip by clip, as its eval-mode forward computes it.

    Only fixed parts are taken from ``frontend``: its torchaudio ``Resample``
    transform (built once, as a data loader would), its Hann window and its
    Kaldi mel banks (``kaldi.get_mel_banks`` plus a zero Nyquist column, as
    EfficientAT builds them). The computation is EfficientAT's, one clip at a
    time: pre-emphasis as ``conv1d`` with ``[-0.97, 1]``, ``torch.stft``
    (centred, reflect padding), squared magnitude, mel product, ``log(x +
    1e-5)``, ``(x + 4.5) / 5``.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveforms ``[batch, samples]`` at ``frontend.orig_sample_rate``.
    frontend : DyMNFrontEnd
        Front-end whose resampler, window and mel banks are used.

    Returns
    -------
    torch.Tensor
        Features ``[batch, 1, n_mels, frames]``, as ``DyMNFrontEnd`` returns.

    Example
    -------
    >>> frontend = DyMNFrontEnd(orig_sample_rate=16000).eval()
    >>> wavs = torch.randn(2, 8000)
    >>> reference = efficientat_loop(wavs, frontend)
    >>> reference.shape
    torch.Size([2, 1, 128, 50])
    >>> bool((reference - frontend(wavs)).abs().max() < 5e-4)
    True
    """
    emphasis = wavs.new_tensor([[[-frontend.preemphasis, 1.0]]])
    feats = []
    for wav in wavs:
        wav = wav[None]
        if frontend.resampler is not None:
            wav = frontend.resampler(wav)
        wav = F.conv1d(wav[:, None], emphasis)[:, 0]
        spec = torch.stft(
            wav,
            frontend.n_fft,
            hop_length=frontend.hop_length,
            win_length=frontend.win_length,
            window=frontend.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        power = torch.view_as_real(spec).pow(2).sum(-1)
        mel = torch.matmul(frontend.mel_banks, power)
        feats.append(((mel + 1e-5).log() + 4.5) / 5.0)
    return torch.stack(feats)


@contextlib.contextmanager
def _threads(count):
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _feature_rows(batches=(1, 8, 32), seconds=10.0, runs=5, threads=2, device="cpu", seed=0):
    """Batched front-ends against their per-clip loops, one row per front-end and batch.

    Arguments
    ---------
    batches : sequence of int
        Batch sizes.
    seconds : float
        Clip duration (16 kHz clips of random noise).
    runs : int
        Timed rounds per batch (median reported).
    threads : int
        CPU threads while timing (0 keeps the current setting).
    device : str
        Device of the batched modules (the loops stay on the CPU).
    seed : int
        Seed of the clips.

    Returns
    -------
    list of dict
        ``front_end``, ``batch``, ``device``, ``batched_ms``, ``loop_ms``
        (medians), ``speedup`` (their ratio, loop over batched),
        ``best_speedup`` (ratio of the fastest runs, the steadier figure on
        a shared machine) and ``max_abs_diff`` between the two outputs.

    Example
    -------
    >>> rows = _feature_rows(batches=[2], seconds=1.0, runs=1, threads=0)
    >>> [(row["front_end"], row["batch"]) for row in rows]
    [('KaldiFbank', 2), ('DyMNFrontEnd', 2)]
    >>> all(row["max_abs_diff"] < 1e-3 for row in rows)
    True
    """
    generator = torch.Generator().manual_seed(seed)
    kaldi = KaldiFbank().to(device)
    dymn_batched = DyMNFrontEnd(orig_sample_rate=16000).eval().to(device)
    dymn_reference = DyMNFrontEnd(orig_sample_rate=16000).eval()

    def dymn_loop(wavs):
        return efficientat_loop(wavs, dymn_reference)

    rows = []
    with _threads(threads):
        for batch in batches:
            wavs = torch.randn(batch, int(16000 * seconds), generator=generator)
            on_device = wavs.to(device)
            pairs = {
                "KaldiFbank": (kaldi, _ast_fbank_loop),
                "DyMNFrontEnd": (dymn_batched, dymn_loop),
            }
            candidates = {}
            for name, (batched, loop) in pairs.items():
                candidates[(name, "batched")] = (batched, on_device, device)
                candidates[(name, "loop")] = (loop, wavs, "cpu")
            times, outputs = time_interleaved(candidates, runs)
            for name in pairs:
                batched, loop = times[(name, "batched")], times[(name, "loop")]
                batched_s, loop_s = statistics.median(batched), statistics.median(loop)
                diff = outputs[(name, "batched")].cpu() - outputs[(name, "loop")]
                rows.append(
                    {
                        "front_end": name,
                        "batch": batch,
                        "device": str(device),
                        "batched_ms": 1e3 * batched_s,
                        "loop_ms": 1e3 * loop_s,
                        "speedup": loop_s / batched_s,
                        "best_speedup": min(loop) / min(batched),
                        "max_abs_diff": float(diff.abs().max()),
                    }
                )
    return rows


def _format_rows(rows):
    """The rows of ``_feature_rows`` as a plain-text table.

    Arguments
    ---------
    rows : list of dict
        Output of ``_feature_rows``.

    Returns
    -------
    str

    Example
    -------
    >>> row = dict(front_end="KaldiFbank", batch=1, device="cpu", batched_ms=1.0,
    ...            loop_ms=2.0, speedup=2.0, best_speedup=2.1, max_abs_diff=0.0)
    >>> print(_format_rows([row]))
    front end     batch  device  batched ms  loop ms (cpu)  speed-up  best  max |diff|
    KaldiFbank        1  cpu          1.000          2.000     2.00x  2.10x     0.0e+00
    """
    lines = [
        f"{'front end':12s}  {'batch':>5s}  {'device':6s}  {'batched ms':>10s}  "
        f"{'loop ms (cpu)':>13s}  {'speed-up':>8s}  {'best':>5s}  {'max |diff|':>10s}"
    ]
    for row in rows:
        lines.append(
            f"{row['front_end']:12s}  {row['batch']:5d}  {row['device']:6s}  "
            f"{row['batched_ms']:10.3f}  {row['loop_ms']:13.3f}  "
            f"{row['speedup']:7.2f}x  {row['best_speedup']:4.2f}x  {row['max_abs_diff']:10.1e}"
        )
    return "\n".join(lines)


def _parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Batched KaldiFbank and DyMNFrontEnd against per-clip loops, "
        "runs interleaved in one process.",
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip duration")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (median)")
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads while timing (0: unchanged)"
    )
    parser.add_argument("--device", default="cpu", help="device of the batched modules")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.runs < 1 or args.seconds < 0.1 or args.threads < 0:
        parser.error("--batches and --runs must be >= 1, --seconds >= 0.1, --threads >= 0")
    return args


def main(argv=None, prog=None):
    """Print (and optionally save) the features table.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    prog : str, optional
        Program name for the help text.

    Returns
    -------
    list of dict
        The rows of ``_feature_rows``.

    Example
    -------
    >>> rows = main(["--batches", "1", "--seconds", "0.5", "--runs", "1"])  # doctest: +ELLIPSIS
    front end ...
    >>> len(rows)
    2
    """
    args = _parse_args(argv, prog)
    rows = _feature_rows(args.batches, args.seconds, args.runs, args.threads, args.device)
    print(_format_rows(rows))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"args": vars(args), "rows": rows}, file, indent=2)
    return rows


if __name__ == "__main__":
    main()
