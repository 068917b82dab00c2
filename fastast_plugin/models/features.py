"""Batched Kaldi filterbanks exactly as the published AST models expect them.

AST (and every checkpoint derived from it) was trained on
``torchaudio.compliance.kaldi.fbank`` computed clip by clip. This module
computes the same features for a whole padded batch at once, honouring
SpeechBrain's relative lengths so that padding never changes a clip's
features.

``batch_features`` runs any front end on a padded batch and gives each
clip's relative *frame* length, what the encoder's ``lengths`` mean; the
Brain and the inference interface both use it.

Authors
 * fastast developers 2026
"""

import inspect
import math

import torch
import torch.nn.functional as F
from speechbrain.utils.autocast import fwd_default_precision
from speechbrain.utils.logger import get_logger
from torchaudio.compliance.kaldi import get_mel_banks

__all__ = [
    "AUDIOSET_MEAN",
    "AUDIOSET_STD",
    "KaldiFbank",
    "band_groups",
    "batch_features",
    "frame_samples",
    "min_clip_samples",
    "num_frames",
    "sample_counts",
]

logger = get_logger(__name__)

# Kaldi's defaults as AST calls them: 25 ms windows every 10 ms at 16 kHz,
# pre-emphasis 0.97, 512-point FFT, mel bands from 20 Hz to Nyquist.
_FRAME_LENGTH_MS = 25.0
_FRAME_SHIFT_MS = 10.0
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0
_LOG_FLOOR = torch.finfo(torch.float32).eps
# What frames past a clip's end hold before normalisation: AST's zeros (a
# log-mel of 0, louder than most speech), or the log floor, which is what
# digital silence (a zero waveform) gives.
_PADDING_VALUES = {"zeros": 0.0, "silence": math.log(_LOG_FLOOR)}
# AST's AudioSet statistics of these features (YuanGongND/ast,
# egs/audioset/run.sh: dataset_mean=-4.2677393, dataset_std=4.5689974), the
# normalisation of every AudioSet-trained AST checkpoint.
AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974


def frame_samples(sample_rate=16000):
    """Kaldi's frame window and shift in samples (25 ms and 10 ms).

    Arguments
    ---------
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    tuple of int
        ``(window, shift)``.

    Example
    -------
    >>> frame_samples(16000), frame_samples(44100)
    ((400, 160), (1102, 441))
    """
    return int(sample_rate * _FRAME_LENGTH_MS / 1000), int(sample_rate * _FRAME_SHIFT_MS / 1000)


def num_frames(num_samples, sample_rate=16000):
    """Number of frames Kaldi's fbank yields for a clip (``snip_edges=True``).

    Arguments
    ---------
    num_samples : int
        Length of the clip in samples.
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    int
        ``1 + (num_samples - window) // shift``, or 0 for clips shorter
        than one window.

    Example
    -------
    >>> num_frames(16000), num_frames(160000), num_frames(100)
    (98, 998, 0)
    """
    window, shift = frame_samples(sample_rate)
    if num_samples < window:
        return 0
    return 1 + (num_samples - window) // shift


def sample_counts(wav_lens, num_samples):
    """Clip lengths in samples from SpeechBrain's relative lengths (round, as SpeechBrain).

    Arguments
    ---------
    wav_lens : torch.Tensor
        Relative lengths ``[batch]``.
    num_samples : int
        Samples of the padded batch.

    Returns
    -------
    list of int
        One count per clip, on the host.

    Example
    -------
    >>> sample_counts(torch.tensor([1.0, 0.5]), 16000)
    [16000, 8000]
    """
    relative = torch.as_tensor(wav_lens).detach().cpu().double()
    return torch.round(relative * num_samples).long().tolist()


def _clip_frame_count(features, num_samples):
    """Frames a front end gives a clip of ``num_samples`` samples on its own.

    The rule is the module's ``num_frames(num_samples)`` when it has one
    (``KaldiFbank``); for SpeechBrain's STFT front ends (``Fbank``,
    ``MFCC``: a ``compute_STFT`` module) ``1 + n // hop`` when the STFT is
    centred, else ``1 + (n - n_fft) // hop``.

    Arguments
    ---------
    features : torch.nn.Module
        The front end.
    num_samples : int
        Length of the clip.

    Returns
    -------
    int or None
        The frame count, or None when the front end's rule is unknown.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> _clip_frame_count(KaldiFbank(), 16000), _clip_frame_count(Fbank(), 16000)
    (98, 101)
    """
    count = getattr(features, "num_frames", None)
    if callable(count):
        return count(num_samples)
    stft = getattr(features, "compute_STFT", None)
    if stft is None or not hasattr(stft, "hop_length"):
        return None
    if stft.center:
        return 1 + num_samples // stft.hop_length
    return max(0, 1 + (num_samples - stft.n_fft) // stft.hop_length)


def _clip_samples_for(features, frames):
    """Fewest samples that give a clip ``frames`` frames (``_clip_frame_count``'s inverse).

    Returns
    -------
    int or None
        None when the front end's rule is unknown.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> _clip_samples_for(KaldiFbank(), 16), _clip_samples_for(Fbank(), 16)
    (2800, 2400)
    """
    samples_for = getattr(features, "samples_for", None)
    if callable(samples_for):
        return samples_for(frames)
    stft = getattr(features, "compute_STFT", None)
    if stft is None or not hasattr(stft, "hop_length"):
        return None
    hops = (max(frames, 1) - 1) * stft.hop_length
    return max(1, hops) if stft.center else stft.n_fft + hops


def min_clip_samples(features, encoder):
    """Samples of the shortest clip an encoder takes behind a front end.

    One patch of frames in the encoder's ``"native"`` length mode (175 ms
    at 16x16 patches, 16 kHz with ``KaldiFbank``); one frame in ``"pad"``
    mode, where the features are padded to the model's input anyway.
    ``batch_features(..., min_samples=)`` pads shorter clips with silence:
    the Brain and ``AudioClassifier`` both do.

    Arguments
    ---------
    features : torch.nn.Module
        The front end (``KaldiFbank``, SpeechBrain's ``Fbank``, ...).
    encoder : torch.nn.Module
        An encoder with ``length_mode`` and ``min_frames`` (``ASTEncoder``);
        anything else counts as ``"pad"``.

    Returns
    -------
    int
        0 when the front end's frame rule is unknown (nothing is padded).

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> encoder = ASTEncoder("tiny224", depth=1, input_tdim=128, length_mode="native")
    >>> min_clip_samples(KaldiFbank(), encoder)
    2800
    >>> encoder.length_mode = "pad"
    >>> min_clip_samples(KaldiFbank(), encoder)
    400
    """
    native = getattr(encoder, "length_mode", "pad") == "native"
    frames = encoder.min_frames if native else 1
    return _clip_samples_for(features, frames) or 0


def _pad_short_clips(wavs, wav_lens, min_samples):
    """Clips shorter than ``min_samples`` followed by silence up to it; new relative lengths.

    A padded batch already holds zeros after a clip; they are set again
    (waveform mixup may have put a partner there) and the clip's length
    grows over them, as if it had been recorded with the silence.
    """
    counts = sample_counts(wav_lens, wavs.shape[1])
    if min(counts) >= min_samples:
        return wavs, wav_lens
    total = max(wavs.shape[1], min_samples)
    wavs = F.pad(wavs, (0, total - wavs.shape[1]))
    for row, count in enumerate(counts):
        wavs[row, count:min_samples] = 0.0
    counts = torch.tensor([max(count, min_samples) for count in counts], dtype=torch.float64)
    return wavs, (counts / total).to(device=wav_lens.device, dtype=wav_lens.dtype)


_WARNED_FRONT_ENDS = set()


def _frame_lengths(features, wav_lens, num_samples, total_frames):
    """Relative frame lengths of a batch: each clip's own frames over the batch's.

    What ``ASTEncoder`` reads as ``lengths`` in ``"native"`` mode. A clip's
    frames are those the front end gives it alone (``_clip_frame_count``),
    at most ``total_frames`` (a front end that crops, e.g. ``KaldiFbank``'s
    ``target_length``); relative to ``total_frames`` they stay right when
    the front end pads the batch further (``target_length``). Relative
    waveform lengths are not frame lengths: a clip would gain up to two
    frames of padding (``KaldiFbank``), or the whole padding up to
    ``target_length``. A front end without a known rule keeps the
    waveform lengths (SpeechBrain's convention), with a warning.

    Arguments
    ---------
    features : torch.nn.Module
        The front end that made the features.
    wav_lens : torch.Tensor
        Relative waveform lengths ``[batch]``.
    num_samples : int
        Samples of the padded batch.
    total_frames : int
        Frames of the batch's features.

    Returns
    -------
    torch.Tensor
        Relative frame lengths ``[batch]`` on ``wav_lens``'s device.

    Example
    -------
    >>> fbank = KaldiFbank(target_length=1024)
    >>> _frame_lengths(fbank, torch.tensor([1.0, 0.5]), 16000, 1024) * 1024
    tensor([98., 48.])
    """
    wav_lens = torch.as_tensor(wav_lens)
    counts = [_clip_frame_count(features, n) for n in sample_counts(wav_lens, num_samples)]
    if None in counts:
        name = type(features).__name__
        if name not in _WARNED_FRONT_ENDS:
            _WARNED_FRONT_ENDS.add(name)
            logger.warning(
                "%s has no num_frames(num_samples) rule: its relative frame lengths "
                "are taken to be the waveform lengths (off by a frame or two)",
                name,
            )
        return wav_lens
    counts = torch.tensor(counts, dtype=torch.float64).clamp(max=total_frames)
    return (counts / total_frames).to(device=wav_lens.device, dtype=torch.float32)


def _takes_lengths(features):
    """Whether a front end's ``forward`` takes relative lengths after the waveforms.

    SpeechBrain's ``Fbank`` and ``MFCC`` take the waveforms only.

    Arguments
    ---------
    features : torch.nn.Module
        The front end (a ``torch.compile``-d one is looked through).

    Returns
    -------
    bool

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> _takes_lengths(KaldiFbank()), _takes_lengths(Fbank())
    (True, False)
    """
    module = getattr(features, "_orig_mod", features)
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):  # no signature: pass them
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return True
    return sum(p.kind in positional for p in parameters) >= 2


def batch_features(features, wavs, wav_lens=None, min_samples=0):
    """Run a front end on a padded batch; features and relative frame lengths.

    The one place where waveform lengths become frame lengths: the Brain
    and ``AudioClassifier`` call it, so a clip gets the same features and
    the same encoder ``lengths`` alone and in any batch. A clip shorter
    than ``min_samples`` (``min_clip_samples``: a click, a 150 ms word
    under one patch in native mode) is padded with silence up to it.

    Arguments
    ---------
    features : torch.nn.Module
        ``KaldiFbank``, SpeechBrain's ``Fbank`` (called without lengths) or
        any module mapping waveforms to ``[batch, frames, bins]``.
    wavs : torch.Tensor
        ``[batch, samples]``.
    wav_lens : torch.Tensor, optional
        Relative lengths ``[batch]``; None: every clip fills the batch.
    min_samples : int
        Samples of the shortest clip (0: no padding).

    Returns
    -------
    feats : torch.Tensor
        ``[batch, frames, bins]``.
    feat_lens : torch.Tensor
        Relative frame lengths ``[batch]`` (``_frame_lengths``).

    Example
    -------
    >>> feats, feat_lens = batch_features(
    ...     KaldiFbank(), torch.randn(2, 16000), torch.tensor([1.0, 0.25])
    ... )
    >>> feats.shape, (feat_lens * feats.shape[1]).tolist()
    (torch.Size([2, 98, 128]), [98.0, 23.0])
    >>> feats, feat_lens = batch_features(
    ...     KaldiFbank(), torch.randn(2, 1600), torch.tensor([1.0, 0.25]), min_samples=2800
    ... )
    >>> feats.shape, (feat_lens * feats.shape[1]).tolist()
    (torch.Size([2, 16, 128]), [16.0, 16.0])
    """
    if wav_lens is None:
        wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
    if min_samples:
        wavs, wav_lens = _pad_short_clips(wavs, wav_lens, min_samples)
    feats = features(wavs, wav_lens) if _takes_lengths(features) else features(wavs)
    return feats, _frame_lengths(features, wav_lens, wavs.shape[1], feats.shape[1])


def band_groups(banks, groups=8):
    """Split the mel bands into ``groups`` runs and find the FFT bins each run covers.

    A triangular band covers a few FFT bins, so ``power @ banks`` is
    mostly products with zeros; one product per run of bands over just the
    bins it covers gives the same sums at a fraction of the work.

    Arguments
    ---------
    banks : torch.Tensor
        Filterbank ``[bins, bands]``.
    groups : int
        Number of runs of consecutive bands.

    Returns
    -------
    list of (slice, slice)
        Bands of each run and the smallest run of bins holding all their
        non-zero weights (one bin for a run of empty bands).

    Example
    -------
    >>> banks = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 0.0]])
    >>> band_groups(banks, 2)
    [(slice(0, 1, None), slice(0, 2, None)), (slice(1, 2, None), slice(1, 3, None))]
    """
    num_bands = banks.shape[1]
    edges = sorted({round(num_bands * g / groups) for g in range(groups + 1)})
    runs = []
    for first, last in zip(edges, edges[1:]):
        used = banks[:, first:last].ne(0).any(1).nonzero().flatten()
        low, high = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        runs.append((slice(first, last), slice(low, high)))
    return runs


class KaldiFbank(torch.nn.Module):
    """AST's input features for a batch of waveforms.

    For each clip this equals what AST's data loader produces: the clip mean
    is subtracted, ``torchaudio.compliance.kaldi.fbank(htk_compat=True,
    use_energy=False, window_type='hanning', num_mel_bins=n_mels,
    dither=0.0, frame_shift=10)`` is computed, the result is zero-padded or
    cropped to ``target_length`` frames, and ``(x - mean) / (2 * std)`` is
    applied when the dataset statistics are given. Frames that would overlap
    a clip's padding are set to zero, exactly as if the clip had been
    processed alone and then padded.

    ``padding="silence"`` fills those frames (and the frames up to
    ``target_length``) with the log floor instead, the features of digital
    silence: short clips are then padded with silence rather than with a
    constant louder than speech (AST's zeros become ``-mean / (2 std)``
    after normalisation, e.g. +0.615 with Speech Commands' statistics),
    which helps models trained from random weights on short clips.

    Speed: on the CPU the frames go through in blocks of about
    ``cpu_chunk_frames`` (several clips or part of one) whose work tensors
    stay in the cache and are reused, the FFT input keeps a zero tail
    instead of being padded per call, and each run of mel bands multiplies
    only the FFT bins it covers (``band_groups``). Up to the FFT every
    rounding is torchaudio's, in its order (including each clip's own
    ``mean``), because the pre-emphasised low bands are sensitive to the
    last bit of the FFT input; elsewhere (CUDA) the whole batch is one
    block.

    Arguments
    ---------
    sample_rate : int
        Sampling rate of the input waveforms in Hz.
    n_mels : int
        Number of mel bands.
    target_length : int, optional
        Number of output frames (pad with zeros or crop). ``None`` keeps the
        number of frames of the longest clip.
    mean : float, optional
        Dataset mean of the log-mel features (AST's normalisation).
    std : float, optional
        Dataset standard deviation of the log-mel features.
    padding : str
        ``"zeros"`` (AST) or ``"silence"`` (the log floor): what frames past
        a clip's end hold before normalisation.

    Example
    -------
    >>> fbank = KaldiFbank(target_length=128, mean=-6.845978, std=5.5654526)
    >>> wavs = torch.randn(2, 16000)
    >>> fbank(wavs, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 128, 128])
    >>> silent = KaldiFbank(target_length=128, padding="silence")
    >>> round(float(silent(wavs)[0, -1, 0]), 2)  # past 98 frames: log(eps)
    -15.94
    """

    # Frames per block on the CPU: a block's work tensors (~5 kB a frame)
    # stay in the cache; on other devices the whole batch is one block.
    cpu_chunk_frames = 1024

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 128,
        target_length: int = None,
        mean: float = None,
        std: float = None,
        padding: str = "zeros",
    ):
        super().__init__()
        if padding not in _PADDING_VALUES:
            raise ValueError(
                f"KaldiFbank `padding` must be one of {sorted(_PADDING_VALUES)}, got {padding!r}"
            )
        if (mean is None) != (std is None):
            raise ValueError(
                f"KaldiFbank needs both `mean` and `std` or neither, got mean={mean}, std={std}"
            )
        if std is not None and std <= 0:
            raise ValueError(f"KaldiFbank `std` must be > 0, got {std}")
        if target_length is not None and target_length < 1:
            raise ValueError(f"KaldiFbank `target_length` must be >= 1, got {target_length}")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.target_length = target_length
        self.mean = mean
        self.std = std
        self.padding = padding
        self.window_length, self.window_shift = frame_samples(sample_rate)
        self.n_fft = 1 << (self.window_length - 1).bit_length()
        window = torch.hann_window(self.window_length, periodic=False)
        banks, _ = get_mel_banks(
            n_mels,
            self.n_fft,
            float(sample_rate),
            _LOW_FREQ,
            0.0,
            100.0,
            -500.0,
            1.0,
        )
        # The Nyquist bin has no mel weight; Kaldi pads the banks with zeros.
        banks = torch.nn.functional.pad(banks, (0, 1))
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)
        self._group_slices = []
        for index, (bands, bins) in enumerate(band_groups(self.mel_banks)):
            weights = self.mel_banks[bins, bands].contiguous()
            self.register_buffer(f"mel_group_{index}", weights, persistent=False)
            self._group_slices.append((bands, bins))

    def num_frames(self, num_samples):
        """Frames of a clip of ``num_samples`` samples alone, before ``target_length``.

        Arguments
        ---------
        num_samples : int
            Length of the clip.

        Returns
        -------
        int
            ``features.num_frames`` at this module's rate.
        """
        return num_frames(num_samples, self.sample_rate)

    def samples_for(self, frames):
        """Fewest samples that give ``frames`` frames (at least one).

        Arguments
        ---------
        frames : int
            Number of frames.

        Returns
        -------
        int
            ``(frames - 1) * shift + window``.
        """
        return (max(frames, 1) - 1) * self.window_shift + self.window_length

    @property
    def _band_groups(self):
        """``(bands, bins, weights)`` of each group of mel bands."""
        return [
            (bands, bins, getattr(self, f"mel_group_{index}"))
            for index, (bands, bins) in enumerate(self._group_slices)
        ]

    @fwd_default_precision(cast_inputs=torch.float32)
    def forward(self, wavs, wav_lens=None):
        """Compute AST features for a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[batch, samples]`` (mono, at ``sample_rate``).
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]`` in (0, 1], SpeechBrain style.

        Returns
        -------
        torch.Tensor
            Features ``[batch, frames, n_mels]``.
        """
        if wavs.dim() != 2:
            raise ValueError(
                f"KaldiFbank expects mono waveforms [batch, samples], got shape {tuple(wavs.shape)}"
            )
        wavs = wavs.float()
        batch, max_samples = wavs.shape
        # Lengths live on the host: one transfer, then every check and loop
        # bound is a plain integer (no device synchronisation per clip).
        lengths = self._absolute_lengths(wav_lens, batch, max_samples)
        too_short = [i for i, n in enumerate(lengths) if n < self.window_length]
        if too_short:
            raise ValueError(
                f"KaldiFbank: clips {too_short} are shorter than one window "
                f"({self.window_length} samples = {_FRAME_LENGTH_MS} ms at "
                f"{self.sample_rate} Hz); lengths were {lengths}"
            )
        frames_per_clip = [num_frames(n, self.sample_rate) for n in lengths]
        total_frames = max(frames_per_clip)
        out_frames = total_frames if self.target_length is None else self.target_length
        # Frames past target_length would be cropped: never computed.
        computed = min(total_frames, out_frames)

        pad_value = _PADDING_VALUES[self.padding]
        feats = wavs.new_full((batch, out_frames, self.n_mels), pad_value)
        chunk_clips, chunk_frames = self._chunking(batch, computed, wavs.device)
        buffers = _FrameBuffers(
            chunk_clips, chunk_frames, self.window_length, self.n_fft, self.n_mels, wavs
        )
        for first in range(0, batch, chunk_clips):
            last = min(first + chunk_clips, batch)
            clip_lengths = lengths[first:last]
            centred = self._remove_clip_mean(wavs[first:last], clip_lengths)
            clip_frames = centred.unfold(1, self.window_length, self.window_shift)
            for start in range(0, computed, chunk_frames):
                stop = min(start + chunk_frames, computed)
                self._log_mel(clip_frames[:, start:stop], buffers, feats[first:last, start:stop])
        if min(frames_per_clip) < computed:
            counts = torch.tensor(frames_per_clip, device=wavs.device)
            past_end = torch.arange(out_frames, device=wavs.device) >= counts[:, None]
            feats.masked_fill_(past_end[..., None], pad_value)
        if self.mean is not None:
            feats.sub_(self.mean).div_(2 * self.std)
        return feats

    def _chunking(self, batch, frames, device):
        """Clips and frames per step: cache-sized blocks on the CPU, one block elsewhere."""
        if device.type != "cpu":
            return batch, frames
        chunk_frames = min(frames, self.cpu_chunk_frames)
        return max(1, min(batch, self.cpu_chunk_frames // chunk_frames)), chunk_frames

    def _remove_clip_mean(self, wavs, lengths):
        """``wav - wav.mean()`` over each clip's own samples (AST's loader).

        On the CPU each mean is that of the clip alone, as AST computes it:
        a batched reduction sums in another order (and splits the work over
        threads differently), and the one-ulp change of the mean alone moves
        the lowest bands by up to ~6e-4.
        """
        if wavs.device.type == "cpu":
            means = torch.stack([wav[:n].mean() for wav, n in zip(wavs, lengths)])
        else:
            counts = torch.tensor(lengths, device=wavs.device)
            valid = torch.arange(wavs.shape[1], device=wavs.device) < counts[:, None]
            means = torch.where(valid, wavs, 0.0).sum(1) / counts
        return wavs - means[:, None]

    def _log_mel(self, frames, buffers, out):
        """Kaldi's log-mel energies of a block of frames, written into ``out``.

        Up to the FFT the roundings are torchaudio's, in its order, on
        purpose: the pre-emphasised low bands lie ~30 dB below the frame
        energy, so a one-ulp change of the FFT input moves their log energy
        by ~1e-4. After the FFT only sums of positive terms remain, so the
        power and the mel sums may be computed in any order.
        """
        clips, count = frames.shape[:2]
        centred, scaled, padded, power = buffers.view(clips, count)
        torch.sub(frames, frames.mean(-1, keepdim=True), out=centred)
        torch.mul(centred, _PREEMPHASIS, out=scaled)
        # x[i] - 0.97 x[i - 1], with x[-1] = x[0] (Kaldi's replicate padding).
        centred[..., 1:].sub_(scaled[..., :-1])
        centred[..., :1].sub_(scaled[..., :1])
        torch.mul(centred, self.window, out=padded[..., : self.window_length])
        parts = torch.view_as_real(torch.fft.rfft(padded)).square_()
        torch.add(parts[..., 0], parts[..., 1], out=power)
        power = power.view(clips * count, -1)
        mel = out.view(clips * count, -1) if out.is_contiguous() else buffers.mel(clips * count)
        # Each band's triangle covers a few FFT bins: one product per group
        # of bands over just the bins the group covers.
        for bands, bins, weights in self._band_groups:
            torch.mm(power[:, bins], weights, out=mel[:, bands])
        mel.clamp_min_(_LOG_FLOOR).log_()
        if mel.data_ptr() != out.data_ptr():
            out.copy_(mel.view(out.shape))

    def _absolute_lengths(self, wav_lens, batch, max_samples):
        """Relative lengths as a host list of sample counts, validated."""
        if wav_lens is None:
            return [max_samples] * batch
        wav_lens = torch.as_tensor(wav_lens).detach().cpu()
        if wav_lens.shape != (batch,):
            raise ValueError(
                f"KaldiFbank `wav_lens` must have shape ({batch},), got {tuple(wav_lens.shape)}"
            )
        if bool(((wav_lens <= 0) | (wav_lens > 1)).any()):
            raise ValueError(
                f"KaldiFbank `wav_lens` are relative lengths in (0, 1], got {wav_lens.tolist()}"
            )
        return sample_counts(wav_lens, max_samples)


class _FrameBuffers:
    """Work tensors for blocks of frames, allocated once per call.

    The FFT input keeps its zero tail (``window .. n_fft``) from the
    allocation on: only the window part is ever written.
    """

    def __init__(self, clips, frames, window_length, n_fft, n_mels, like):
        rows = clips * frames
        bins = n_fft // 2 + 1
        self.widths = (window_length, window_length, n_fft, bins)
        self.storages = (
            like.new_empty(rows * window_length),
            like.new_empty(rows * window_length),
            like.new_zeros(rows * n_fft),
            like.new_empty(rows * bins),
        )
        self.mel_storage = like.new_empty(rows * n_mels)
        self.n_mels = n_mels

    def view(self, clips, frames):
        """Frames, pre-emphasised frames, FFT input and power ``[clips, frames, width]``."""
        rows = clips * frames
        return [
            storage[: rows * width].view(clips, frames, width)
            for storage, width in zip(self.storages, self.widths)
        ]

    def mel(self, rows):
        """A ``[rows, n_mels]`` buffer for blocks that are not contiguous in the output."""
        return self.mel_storage[: rows * self.n_mels].view(rows, self.n_mels)
