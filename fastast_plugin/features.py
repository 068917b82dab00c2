"""Batched Kaldi filterbanks exactly as the published AST models expect them.

AST (and every checkpoint derived from it) was trained on
``torchaudio.compliance.kaldi.fbank`` computed clip by clip. This module
computes the same features for a whole padded batch at once, honouring
SpeechBrain's relative lengths so that padding never changes a clip's
features.

Authors
 * fastast developers 2026
"""

import torch
from speechbrain.utils.autocast import fwd_default_precision
from torchaudio.compliance.kaldi import get_mel_banks

# Kaldi's defaults as AST calls them: 25 ms windows every 10 ms at 16 kHz,
# pre-emphasis 0.97, 512-point FFT, mel bands from 20 Hz to Nyquist.
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
LOG_FLOOR = torch.finfo(torch.float32).eps


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
    window = int(sample_rate * FRAME_LENGTH_MS / 1000)
    shift = int(sample_rate * FRAME_SHIFT_MS / 1000)
    if num_samples < window:
        return 0
    return 1 + (num_samples - window) // shift


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

    Example
    -------
    >>> fbank = KaldiFbank(target_length=128, mean=-6.845978, std=5.5654526)
    >>> wavs = torch.randn(2, 16000)
    >>> fbank(wavs, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 128, 128])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 128,
        target_length: int = None,
        mean: float = None,
        std: float = None,
    ):
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError(
                "KaldiFbank needs both `mean` and `std` or neither, got "
                f"mean={mean}, std={std}"
            )
        if std is not None and std <= 0:
            raise ValueError(f"KaldiFbank `std` must be > 0, got {std}")
        if target_length is not None and target_length < 1:
            raise ValueError(
                f"KaldiFbank `target_length` must be >= 1, got {target_length}"
            )
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.target_length = target_length
        self.mean = mean
        self.std = std
        self.window_length = int(sample_rate * FRAME_LENGTH_MS / 1000)
        self.window_shift = int(sample_rate * FRAME_SHIFT_MS / 1000)
        self.n_fft = 1 << (self.window_length - 1).bit_length()
        window = torch.hann_window(self.window_length, periodic=False)
        banks, _ = get_mel_banks(
            n_mels, self.n_fft, float(sample_rate), LOW_FREQ, 0.0,
            100.0, -500.0, 1.0,
        )
        # The Nyquist bin has no mel weight; Kaldi pads the banks with zeros.
        banks = torch.nn.functional.pad(banks, (0, 1))
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)

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
                "KaldiFbank expects mono waveforms [batch, samples], got shape "
                f"{tuple(wavs.shape)}"
            )
        batch, max_samples = wavs.shape
        lengths = self._absolute_lengths(wav_lens, batch, max_samples, wavs.device)
        frames_per_clip = 1 + torch.div(
            lengths - self.window_length, self.window_shift, rounding_mode="floor"
        )
        too_short = (lengths < self.window_length).nonzero().flatten().tolist()
        if too_short:
            raise ValueError(
                f"KaldiFbank: clips {too_short} are shorter than one window "
                f"({self.window_length} samples = {FRAME_LENGTH_MS} ms at "
                f"{self.sample_rate} Hz); lengths were {lengths.tolist()}"
            )

        sample_mask = torch.arange(max_samples, device=wavs.device) < lengths[:, None]
        clip_mean = (wavs * sample_mask).sum(1) / lengths
        wavs = (wavs - clip_mean[:, None]) * sample_mask

        total_frames = int(frames_per_clip.max())
        frames = wavs.unfold(1, self.window_length, self.window_shift)
        frames = frames[:, :total_frames]
        frames = frames - frames.mean(-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - PREEMPHASIS * previous) * self.window
        spectrum = torch.fft.rfft(frames, n=self.n_fft).abs().pow(2)
        feats = (spectrum @ self.mel_banks).clamp_min(LOG_FLOOR).log()

        frame_mask = torch.arange(total_frames, device=wavs.device) < frames_per_clip[:, None]
        feats = feats * frame_mask[..., None]
        feats = self._pad_or_crop(feats)
        if self.mean is not None:
            feats = (feats - self.mean) / (2 * self.std)
        return feats

    def _absolute_lengths(self, wav_lens, batch, max_samples, device):
        """Turn relative lengths into sample counts, validating them."""
        if wav_lens is None:
            return torch.full((batch,), max_samples, device=device)
        wav_lens = torch.as_tensor(wav_lens, device=device)
        if wav_lens.shape != (batch,):
            raise ValueError(
                f"KaldiFbank `wav_lens` must have shape ({batch},), got "
                f"{tuple(wav_lens.shape)}"
            )
        if bool(((wav_lens <= 0) | (wav_lens > 1)).any()):
            raise ValueError(
                "KaldiFbank `wav_lens` are relative lengths in (0, 1], got "
                f"{wav_lens.tolist()}"
            )
        return torch.round(wav_lens.double() * max_samples).long()

    def _pad_or_crop(self, feats):
        """Zero-pad or crop the time axis to ``target_length``."""
        if self.target_length is None:
            return feats
        missing = self.target_length - feats.shape[1]
        if missing > 0:
            return torch.nn.functional.pad(feats, (0, 0, 0, missing))
        return feats[:, : self.target_length]
