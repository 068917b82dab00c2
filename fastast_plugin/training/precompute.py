"""Precompute a teacher's logits over a manifest into a ``LogitsStore``.

``python -m fastast_plugin.training.precompute --manifest train.json --out DIR
--weights teacher.pt`` (or ``fastast precompute ...``) runs a DyMN teacher
over every clip of a SpeechBrain JSON manifest and writes a logits store
(``fastast_plugin.training.logits_store``), which
``fastast_plugin.training.teachers.LogitsStore`` reads back by clip id.

Authors
 * fastast developers 2026
"""

import argparse
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import soundfile as sf
import torch.nn.functional as F
from speechbrain.utils.data_utils import batch_pad_right
from speechbrain.utils.logger import get_logger
from torch import nn

from fastast_plugin.cli_options import add_deprecated_alias, add_option
from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.dataio import audio_problem, read_manifest
from fastast_plugin.training.logits_store import write_store
from fastast_plugin.training.teachers import LogitsStore, OnlineTeacher, build_dymn_teacher

__all__ = ["main"]

logger = get_logger(__name__)

_STORE_DTYPES = ("float16", "float32")


def _precompute_teacher_logits(
    teacher,
    manifest: str | dict[str, dict],
    out_dir: str,
    batch_size: int = 32,
    sample_rate: int | None = None,
    clip_seconds: float | None = None,
    dtype: Literal["float16", "float32"] = "float16",
    device: str = "cpu",
    wav_key: str = "wav",
):
    """Runs a teacher over a SpeechBrain JSON manifest and writes a ``LogitsStore``.

    Audio is read with ``fastast_plugin.data.audio.load_audio`` at raw amplitude
    (no normalisation). Clips are batched only with clips of the same length
    (after ``clip_seconds`` padding/cutting), so each clip's logits do not
    depend on the others in its batch. Rows follow the manifest's order.

    Arguments
    ---------
    teacher : callable
        ``teacher(wavs, wav_lens, ids) -> (logits, mask)``, e.g. an
        ``OnlineTeacher``; a plain ``nn.Module`` mapping waveforms to logits
        is wrapped in one.
    manifest : str or dict
        Path of a JSON manifest ``{id: {"wav": path or {"file", "start",
        "stop"}, ...}}``, or the loaded dict.
    out_dir : str
        Store folder (created; existing store files are replaced).
    batch_size : int
        Clips per teacher call.
    sample_rate : int, optional
        Expected rate of every file, checked from the headers (the rate the
        teacher's front-end expects as input); needed with ``clip_seconds``.
    clip_seconds : float, optional
        Pad with zeros or cut every clip to this duration (e.g. 5.0 for
        ESC-50, DyMN having no padding mask); None keeps each clip's length.
    dtype : str
        ``"float16"`` (enough for logits) or ``"float32"``.
    device : str
        Where the teacher runs.
    wav_key : str
        Manifest field holding the audio.

    Returns
    -------
    LogitsStore
        The written store.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.zeros(1600), 16000)
    >>> manifest = {"a": {"wav": str(tmp / "a.wav")}}
    >>> teacher = OnlineTeacher(nn.Linear(1600, 5))
    >>> store = _precompute_teacher_logits(teacher, manifest, tmp / "store", sample_rate=16000)
    >>> store.logits.shape, store.index
    ((1, 5), {'a': 0})
    """
    _check_options(batch_size, dtype, clip_seconds, sample_rate)
    entries = manifest if isinstance(manifest, dict) else read_manifest(os.fspath(manifest))
    if not entries:
        raise ValueError(f"manifest {manifest!r} holds no clips")
    ids = list(entries)
    wavs = [_manifest_wav(entries, clip_id, wav_key) for clip_id in ids]
    clip_samples = None if clip_seconds is None else round(clip_seconds * sample_rate)
    lengths = [_clip_samples(i, w, sample_rate) for i, w in zip(ids, wavs)]
    if clip_samples is not None:
        lengths = [clip_samples] * len(ids)
    if not isinstance(teacher, OnlineTeacher) and isinstance(teacher, nn.Module):
        teacher = OnlineTeacher(teacher)
    if isinstance(teacher, nn.Module):
        teacher.to(device)
    clips = _Clips(ids, wavs, clip_samples, sample_rate)
    logits = _run_teacher(teacher, clips, lengths, batch_size, device, dtype)
    meta = {
        "n_clips": len(ids),
        "num_classes": int(logits.shape[1]),
        "dtype": dtype,
        "sample_rate": sample_rate,
        "clip_seconds": clip_seconds,
        "manifest": None if isinstance(manifest, dict) else os.fspath(manifest),
        "teacher": type(getattr(teacher, "model", teacher)).__name__,
    }
    write_store(out_dir, logits, ids, meta)
    logger.info("Wrote teacher logits for %d clips to %s", len(ids), out_dir)
    return LogitsStore(out_dir)


def _check_options(batch_size, dtype, clip_seconds, sample_rate):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if dtype not in _STORE_DTYPES:
        raise ValueError(f"dtype must be one of {_STORE_DTYPES}, got {dtype!r}")
    if clip_seconds is not None and (sample_rate is None or clip_seconds <= 0):
        raise ValueError(
            f"clip_seconds must be > 0 and needs sample_rate, got clip_seconds="
            f"{clip_seconds}, sample_rate={sample_rate}"
        )


def _manifest_wav(entries, clip_id, wav_key):
    entry = entries[clip_id]
    if not isinstance(entry, dict) or wav_key not in entry:
        raise ValueError(f"manifest entry {clip_id!r} has no {wav_key!r} field: {entry!r}")
    return entry[wav_key]


def _clip_samples(clip_id, wav, sample_rate):
    """Checks a manifest ``wav`` entry's file header; returns its number of samples."""
    path = wav if isinstance(wav, str) else wav["file"]
    problem = audio_problem(path, sample_rate)
    if problem is not None:
        raise ValueError(f"clip {clip_id!r}: audio file {path!r}: {problem}")
    frames = sf.info(path).frames
    if isinstance(wav, dict):
        start = wav.get("start", 0)
        stop = wav.get("stop", frames)
        frames = min(stop if stop != start else frames, frames) - start
    return frames


def _length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Row batches of at most ``batch_size`` clips, all of one length (shortest first)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batch = []
    for i in order:
        if batch and (len(batch) == batch_size or lengths[i] != lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


class _Clips:
    """The manifest's clips by row: ids, audio entries and the fixed length."""

    def __init__(self, ids, wavs, clip_samples, sample_rate):
        self.ids, self.wavs = ids, wavs
        self.clip_samples, self.sample_rate = clip_samples, sample_rate

    def load(self, row):
        """Waveform of one clip, padded with zeros or cut to ``clip_samples`` if set."""
        # The headers were checked against sample_rate: no resampling happens.
        sig = load_audio(self.wavs[row], self.sample_rate)
        if self.clip_samples is None:
            return sig
        if sig.shape[0] >= self.clip_samples:
            return sig[: self.clip_samples]
        return F.pad(sig, (0, self.clip_samples - sig.shape[0]))


def _run_teacher(teacher, clips, lengths, batch_size, device, dtype):
    """Teacher logits ``[N, C]`` in manifest order, as a numpy array of ``dtype``."""
    out = None
    batches = list(_length_batches(lengths, batch_size))
    for step, rows in enumerate(batches):
        batch_wavs, wav_lens = batch_pad_right([clips.load(r) for r in rows])
        ids = [clips.ids[r] for r in rows]
        logits, _ = teacher(batch_wavs.to(device), wav_lens.to(device), ids)
        logits = logits.detach().float().cpu().numpy().astype(dtype)
        if not np.isfinite(logits).all():
            raise ValueError(f"teacher logits for clips {ids[:5]} are not finite in {dtype}")
        if out is None:
            out = np.zeros((len(clips.ids), logits.shape[1]), dtype=dtype)
        out[rows] = logits
        if (step + 1) % 50 == 0:
            logger.info("Teacher logits: batch %d of %d", step + 1, len(batches))
    return out


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog or "python -m fastast_plugin.training.precompute",
        description="Run a DyMN teacher over a manifest and write a logits store.",
    )
    parser.add_argument("--manifest", required=True, help="SpeechBrain JSON manifest")
    parser.add_argument("--out", required=True, help="store folder to write")
    parser.add_argument("--teacher", help="released DyMN name, e.g. dymn10_as")
    parser.add_argument("--checkpoint-dir", help="folder of the released .pt files")
    parser.add_argument("--weights", help="DyMN state dict file (instead of --teacher)")
    parser.add_argument("--width-mult", type=float, default=1.0, help="DyMN width for --weights")
    parser.add_argument("--download", action="store_true", help="download a missing checkpoint")
    parser.add_argument("--sample-rate", type=int, default=16000, help="rate of the audio files")
    parser.add_argument("--clip-seconds", type=float, help="pad/cut every clip to this length")
    parser.add_argument("--num-classes", type=int, help="check the teacher's class count")
    add_option(parser, "batch_size", default=32, note="clips of one length")
    store_dtype = parser.add_argument(
        "--store-dtype",
        choices=_STORE_DTYPES,
        default="float16",
        help="dtype the logits are stored in (the teacher runs in fp32; default: float16)",
    )
    add_deprecated_alias(parser, "--dtype", store_dtype)
    add_option(parser, "device", default="cpu")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None):
    """Command line: ``python -m fastast_plugin.training.precompute --manifest ... --out ...``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    prog : str, optional
        Program name for ``--help`` (``fastast precompute`` from ``fastast``).

    Returns
    -------
    LogitsStore
        What ``_precompute_teacher_logits`` wrote.

    Example
    -------
    >>> import json, torch
    >>> from fastast_plugin.models.dymn.model import DyMN
    >>> tmp = getfixture("tmp_path")
    >>> torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp / "t.pt")
    >>> sf.write(tmp / "a.wav", np.zeros(16000), 16000)
    >>> _ = (tmp / "m.json").write_text(json.dumps({"a": {"wav": str(tmp / "a.wav")}}))
    >>> store = main([
    ...     "--manifest", str(tmp / "m.json"), "--out", str(tmp / "kd"),
    ...     "--weights", str(tmp / "t.pt"), "--width-mult", "0.4",
    ... ])
    >>> store.logits.shape
    (1, 3)
    """
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    teacher = build_dymn_teacher(
        name=args.teacher,
        checkpoint_dir=args.checkpoint_dir,
        weights=args.weights,
        width_mult=args.width_mult,
        sample_rate=args.sample_rate,
        download=args.download,
        num_classes=args.num_classes,
    )
    return _precompute_teacher_logits(
        teacher,
        args.manifest,
        args.out,
        batch_size=args.batch_size,
        sample_rate=args.sample_rate,
        clip_seconds=args.clip_seconds,
        dtype=args.store_dtype,
        device=args.device,
    )


if __name__ == "__main__":
    main()
