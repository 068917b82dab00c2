"""The one audio loader of the tools: a mono float32 waveform at a given rate.

Files are read with SpeechBrain's ``read_audio`` (soundfile underneath, never
``torchaudio.load``; the header with ``soundfile.info``), channels are averaged and other rates resampled with
``torchaudio.functional.resample``. The recipes' data pipelines
(``fastast_plugin.data.dataio``, ``fastast_plugin.data.crops``, AudioSet's manifests
and shards), the inference interface, the patch-size sweep, the
teacher-logits precompute and the token-merging pictures read their clips
through ``load_audio``.

Authors
 * fastast developers 2026
"""

import os

import soundfile as sf
import torch
import torchaudio
from speechbrain.dataio.dataio import read_audio
from speechbrain.utils.logger import get_logger

__all__ = ["AudioError", "load_audio"]

logger = get_logger(__name__)


class AudioError(ValueError):
    """An audio file is missing, empty, unreadable or corrupt; the message names it.

    Example
    -------
    >>> isinstance(AudioError("x.wav: empty"), ValueError)
    True
    """


def load_audio(source, sample_rate=16000):
    """Read a clip as a 1-D float32 waveform at ``sample_rate``.

    Arguments
    ---------
    source : str, dict or file-like
        An audio file, SpeechBrain's segment form ``{"file": path,
        "start": first sample, "stop": end sample}`` (as in JSON manifests;
        samples at the file's rate), or an open binary file (e.g. a shard
        member in ``io.BytesIO``).
    sample_rate : int, optional
        Rate the caller expects; a file at another rate is resampled. None
        keeps the file's rate.

    Returns
    -------
    torch.Tensor
        ``[samples]`` float32 (several channels are averaged).

    Raises
    ------
    AudioError
        The file is missing, empty, unreadable or corrupt.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = str(getfixture("tmp_path") / "stereo.wav")
    >>> sf.write(path, np.zeros((44100, 2)), 44100)
    >>> load_audio(path).shape
    torch.Size([16000])
    >>> load_audio({"file": path, "start": 0, "stop": 441}, sample_rate=None).shape
    torch.Size([441])
    >>> load_audio(open(path, "rb")).shape
    torch.Size([16000])
    """
    if hasattr(source, "read"):
        return _resampled(
            *_read_file_object(source), sample_rate, getattr(source, "name", "<stream>")
        )
    path = os.fspath(source["file"] if isinstance(source, dict) else source)
    if not os.path.isfile(path):
        raise AudioError(f"audio file {path!r} not found")
    try:
        # soundfile's header: SpeechBrain's read_audio_info fails on empty files.
        info = sf.info(path)
        if info.frames == 0:
            raise AudioError(f"audio file {path!r} is empty")
        wav = read_audio(source if isinstance(source, dict) else path)
    except AudioError:
        raise
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(f"audio file {path!r} is unreadable or corrupt: {err}") from err
    if wav.numel() == 0:  # an empty segment of a file
        raise AudioError(f"audio file {path!r}: segment {source!r} is empty")
    return _resampled(wav, info.samplerate, sample_rate, path)


def _read_file_object(stream):
    """``([samples, channels], rate)`` of an open audio file."""
    name = getattr(stream, "name", "<stream>")
    try:
        data, rate = sf.read(stream, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(f"audio {name!r} is unreadable or corrupt: {err}") from err
    if data.shape[0] == 0:
        raise AudioError(f"audio {name!r} is empty")
    return torch.from_numpy(data), rate


def _resampled(wav, rate, sample_rate, path):
    """Mono float32 at ``sample_rate`` (None: ``rate``) of a ``[samples(, channels)]`` wave."""
    if wav.dim() == 2:
        logger.debug("%s has %d channels; averaging them", path, wav.shape[1])
        wav = wav.mean(dim=1)
    wav = wav.float()
    if sample_rate is not None and rate != sample_rate:
        logger.debug("Resampling %s from %d Hz to %d Hz", path, rate, sample_rate)
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    return wav
