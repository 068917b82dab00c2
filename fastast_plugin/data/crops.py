"""Crops of long recordings: a random one per epoch in training, a fixed one in evaluation.

``crop_length`` turns feature frames into samples, ``_crop_window`` says
where a crop lies in a clip, and ``cropped_audio_pipeline`` is the
SpeechBrain pipeline that reads only that crop from disk (used by
``fastast_plugin.data.dataio.classification_datasets`` for datasets of long
utterances such as VoxCeleb).

Authors
 * fastast developers 2026
"""

import math

import soundfile as sf
import speechbrain as sb
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.models.features import frame_samples

__all__ = ["CROP_MODES", "crop_length", "cropped_audio_pipeline"]

CROP_MODES = ("random", "start", "centre")


def crop_length(frames, sample_rate=16000):
    """Samples of the shortest clip that gives ``frames`` Kaldi fbank frames.

    ``(frames - 1) * shift + window`` with the 25 ms window and 10 ms shift
    of ``fastast_plugin.models.features.KaldiFbank``, so a crop of this length
    fills an encoder of ``input_tdim = frames`` exactly.

    Arguments
    ---------
    frames : int
        Number of feature frames (at least 1).
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    int
        Number of samples.

    Example
    -------
    >>> crop_length(1024), crop_length(128)
    (164080, 20720)
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"crop frames must be an int >= 1, got {frames!r}")
    window, shift = frame_samples(sample_rate)
    return (frames - 1) * shift + window


def _crop_window(num_samples, length, mode, generator=None):
    """Where a crop of ``length`` samples lies in a clip of ``num_samples``.

    A clip no longer than ``length`` is kept whole (the feature extractor
    pads it). Otherwise the crop starts at a position drawn uniformly from
    every position that keeps it inside the clip (``"random"``, with
    ``torch.randint``: each DataLoader worker and each epoch draws its own,
    since PyTorch reseeds the workers' generators for every epoch), at the
    start of the clip (``"start"``, what AST's and FlexiAST's loaders
    keep), or in its centre (``"centre"``, rounding down).

    Arguments
    ---------
    num_samples : int
        Length of the clip.
    length : int
        Length of the crop.
    mode : str
        ``"random"``, ``"start"`` or ``"centre"``.
    generator : torch.Generator, optional
        For ``"random"``; None uses PyTorch's default generator.

    Returns
    -------
    tuple of int
        ``(start, stop)`` with ``0 <= start < stop <= num_samples``.

    Example
    -------
    >>> _crop_window(100, 40, "start"), _crop_window(100, 40, "centre"), _crop_window(30, 40, "random")
    ((0, 40), (30, 70), (0, 30))
    >>> start, stop = _crop_window(100, 40, "random")
    >>> 0 <= start <= 60 and stop == start + 40
    True
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")
    if num_samples < 1 or length < 1:
        raise ValueError(
            f"crop_window: need num_samples and length >= 1, got {num_samples}, {length}"
        )
    if num_samples <= length:
        return 0, num_samples
    slack = num_samples - length
    if mode == "start":
        start = 0
    elif mode == "centre":
        start = slack // 2
    else:
        start = int(torch.randint(slack + 1, (1,), generator=generator))
    return start, start + length


def cropped_audio_pipeline(sample_rate, length, mode, generator=None):
    """A SpeechBrain pipeline ``wav -> sig`` that reads one crop of each file.

    Only the crop is read from disk (``soundfile`` seeks to it), so long
    utterances cost no more than short ones. Where the crop lies is
    ``_crop_window``'s rule, applied at the file's own rate; a clip shorter
    than the crop is read whole. Files at another rate are resampled and
    several channels averaged (``fastast_plugin.data.audio.load_audio``).

    Arguments
    ---------
    sample_rate : int
        Rate of ``sig``.
    length : int
        Crop length in samples (``crop_length(frames)`` fills ``frames``
        feature frames).
    mode : str
        ``"random"`` (training), ``"start"`` or ``"centre"`` (evaluation).
    generator : torch.Generator, optional
        For ``"random"``; None: PyTorch's default generator.

    Returns
    -------
    DynamicItem
        Takes ``wav``, provides ``sig`` (a ``[samples]`` float tensor).

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmpdir") / "d.wav")
    >>> sf.write(path, np.arange(1000) / 1000, 16000, subtype="FLOAT")
    >>> sig = cropped_audio_pipeline(16000, 400, "centre")(path)
    >>> sig.shape, round(float(sig[0]) * 1000)
    (torch.Size([400]), 300)
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"crop length must be an int >= 1 (samples), got {length!r}")

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def read(wav):
        info = sf.info(wav)
        # The crop in the file's samples; resampling may give one sample more.
        file_length = math.ceil(length * info.samplerate / sample_rate)
        start, stop = _crop_window(info.frames, file_length, mode, generator)
        return load_audio({"file": wav, "start": start, "stop": stop}, sample_rate)[:length]

    return read
