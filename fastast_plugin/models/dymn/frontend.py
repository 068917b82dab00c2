"""EfficientAT's log-mel front-end (``AugmentMelSTFT``) for DyMN.

EfficientAT's DyMN weights (Schmid et al., "Dynamic Convolutional Neural
Networks as Efficient Pre-trained Audio Models", IEEE/ACM TASLP 2024) were
trained on the 32 kHz log-mel features of ``AugmentMelSTFT`` in EfficientAT's
``models/preprocess.py`` (https://github.com/fschmid56/EfficientAT). This
module computes the same features, with Kaldi's triangular mel filterbank
from ``torchaudio.compliance.kaldi.get_mel_banks`` (as EfficientAT does), a
band-limited resampler for 16 kHz input and per-clip lengths.

Authors
 * fastast developers 2026
"""

import math

import torch
import torch.nn.functional as F
import torchaudio
from speechbrain.utils.autocast import fwd_default_precision
from torch import nn
from torchaudio.compliance import kaldi

from fastast_plugin.models.features import band_groups

__all__ = ["DyMNFrontEnd"]

# Log-mel constants of EfficientAT's front-end.
_LOG_OFFSET = 1e-5
_NORM_SHIFT = 4.5
_NORM_SCALE = 5.0
# Kaldi's VTLN options; with a warp factor of 1 the cut-offs are unused.
_NO_VTLN = {"vtln_low": 100.0, "vtln_high": -500.0, "vtln_warp_factor": 1.0}


def _mel_banks(n_mels, n_fft, sample_rate, fmin, fmax):
    """Kaldi's mel filterbank ``[n_mels, n_fft // 2 + 1]``, as EfficientAT builds it.

    ``torchaudio.compliance.kaldi.get_mel_banks`` covers the bins below
    Nyquist; EfficientAT appends a zero column for the Nyquist bin.
    """
    banks, _ = kaldi.get_mel_banks(
        n_mels, n_fft, float(sample_rate), float(fmin), float(fmax), **_NO_VTLN
    )
    return F.pad(banks, (0, 1))


def _block_resampler(resampler, outputs_per_block=64):
    """Block-Toeplitz matrix of a torchaudio ``Resample``'s sinc kernel.

    torchaudio computes ``y[n * new + p] = sum_k x[n * orig + k] h[p, k]``
    (``h = resampler.kernel[:, 0]``, ``x`` zero-padded by ``width``). One row
    block of ``B`` kernel positions reads ``(B - 1) * orig + K`` inputs and
    writes ``B * new`` outputs; this is the ``[inputs, outputs]`` matrix of
    such a block, with ``B`` about ``outputs_per_block / new``.
    """
    kernel = resampler.kernel[:, 0]  # [new, K]
    new, taps = kernel.shape
    orig = resampler.orig_freq // resampler.gcd
    block = max(1, outputs_per_block // new)
    matrix = kernel.new_zeros((block - 1) * orig + taps, block, new)
    for position in range(block):
        start = position * orig
        matrix[start : start + taps, position] = kernel.T
    return matrix.view(-1, block * new)


def _check_integers(minimum, **values):
    for name, value in values.items():
        if int(value) != value or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")


class DyMNFrontEnd(nn.Module):
    """EfficientAT's log-mel front-end (``AugmentMelSTFT``) for DyMN.

    Steps: optional band-limited resampling to ``sample_rate``; pre-emphasis
    ``y[n] = x[n+1] - 0.97 x[n]`` (one sample shorter); centred STFT with
    reflect padding and a symmetric Hann window of ``win_length`` zero-padded
    to ``n_fft``; power spectrum; Kaldi mel filterbank (triangles linear in
    ``1127 ln(1 + f / 700)``, peak 1, no area normalisation, zero Nyquist
    column; computed in fp32); ``ln(x + 1e-5)``; in training only,
    SpecAugment masks; ``(x + 4.5) / 5``.

    In eval mode the band is ``[fmin, fmax]`` exactly and the output is
    deterministic. In training mode the band edges are
    jittered once per batch, ``fmin + U{0..fmin_aug_range-1}`` and
    ``fmax + fmax_aug_range // 2 - U{0..fmax_aug_range-1}``, and iid
    frequency/time masks of widths below ``freqm``/``timem`` are applied per
    clip (EfficientAT's training scripts set ``freqm = timem = 0``).

    Each clip's features depend only on its own samples (as given by
    ``wav_lens``): frames past a clip's end are set to the digital-silence
    value ``(ln(1e-5) + 4.5) / 5``.

    Speed: the resampler's convolution runs as one block-Toeplitz matrix
    product (the same sums as torchaudio's ``Resample``), the frames go
    through the FFT in cache-sized blocks (``cpu_chunk_frames`` on the CPU,
    all at once elsewhere) with a zero-tailed window buffer, and each run
    of mel bands multiplies only the FFT bins it covers
    (``fastast_plugin.models.features.band_groups``).

    Arguments
    ---------
    sample_rate : int
        Rate the features are computed at (DyMN's weights expect 32000).
    orig_sample_rate : int
        Rate of the input waveforms; if it differs from ``sample_rate`` the
        input goes through ``torchaudio.transforms.Resample`` (Kaiser-windowed
        sinc, band-limited) first. With 16 kHz input the mel bands above
        about 7.6 kHz (the top ~25 of 128) stay near the silence value.
    n_fft : int
        FFT size.
    win_length : int
        Hann window length in samples.
    hop_length : int
        Frame shift in samples.
    preemphasis : float
        Pre-emphasis coefficient.
    n_mels : int
        Number of mel bands.
    fmin : float
        Lowest mel edge in Hz.
    fmax : float, optional
        Highest mel edge in Hz; None means ``sample_rate / 2 -
        fmax_aug_range / 2`` (15 kHz at 32 kHz).
    fmin_aug_range : int
        Training-time jitter range of ``fmin`` in Hz (0 disables).
    fmax_aug_range : int
        Training-time jitter range of ``fmax`` in Hz (0 disables).
    freqm : int
        Maximum frequency-mask width in bins during training (0 disables).
    timem : int
        Maximum time-mask width in frames during training (0 disables).
    resample_lowpass_width : int
        Zero crossings on each side of the resampling filter.
    resample_rolloff : float
        Resampler cut-off as a fraction of the lower Nyquist frequency.
    resample_beta : float
        Kaiser window shape of the resampling filter. The signature's values
        are librosa's "kaiser_best"; torchaudio's own Resample defaults
        (width 6, rolloff 0.99, Hann) leave images only about 11 dB down
        near the band edge, whereas these push them below the log-mel floor.

    Example
    -------
    >>> frontend = DyMNFrontEnd().eval()
    >>> frontend(torch.randn(2, 32000)).shape
    torch.Size([2, 1, 128, 100])
    >>> frontend_16k = DyMNFrontEnd(orig_sample_rate=16000).eval()
    >>> frontend_16k(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 1, 128, 100])
    """

    # Frames per block on the CPU, so that a block's work tensors stay in
    # the cache; on other devices each length's clips are one block.
    cpu_chunk_frames = 512

    def __init__(
        self,
        # Sampling rates
        sample_rate: int = 32000,
        orig_sample_rate: int = 32000,
        # STFT
        n_fft: int = 1024,
        win_length: int = 800,
        hop_length: int = 320,
        preemphasis: float = 0.97,
        # Mel filterbank
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        fmin_aug_range: int = 10,
        fmax_aug_range: int = 2000,
        # Training-time masking
        freqm: int = 0,
        timem: int = 0,
        # Resampling (Kaiser-windowed sinc, librosa's "kaiser_best" settings)
        resample_lowpass_width: int = 64,
        resample_rolloff: float = 0.9475937167399596,
        resample_beta: float = 14.769656459379492,
    ):
        super().__init__()
        _check_integers(
            1,
            sample_rate=sample_rate,
            orig_sample_rate=orig_sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            resample_lowpass_width=resample_lowpass_width,
        )
        if not 0 < resample_rolloff <= 1:
            raise ValueError(f"resample_rolloff must be in (0, 1], got {resample_rolloff}")
        if win_length > n_fft:
            raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length}")
        _check_integers(
            0,
            fmin_aug_range=fmin_aug_range,
            fmax_aug_range=fmax_aug_range,
            freqm=freqm,
            timem=timem,
        )
        if fmax is None:
            fmax = sample_rate / 2 - fmax_aug_range / 2
        if fmin < 0 or fmin + max(fmin_aug_range - 1, 0) >= fmax - fmax_aug_range / 2:
            raise ValueError(
                f"fmin must be >= 0 and below fmax even after jitter, got fmin={fmin}, fmax={fmax}"
            )
        if fmax + fmax_aug_range // 2 > sample_rate / 2:
            raise ValueError(
                "fmax + fmax_aug_range // 2 must be <= sample_rate / 2 = "
                f"{sample_rate / 2}, got fmax={fmax}, fmax_aug_range={fmax_aug_range}"
            )

        self.sample_rate = int(sample_rate)
        self.orig_sample_rate = int(orig_sample_rate)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.fmin_aug_range = int(fmin_aug_range)
        self.fmax_aug_range = int(fmax_aug_range)
        self.freqm = int(freqm)
        self.timem = int(timem)

        if self.orig_sample_rate != self.sample_rate:
            self.resampler = torchaudio.transforms.Resample(
                self.orig_sample_rate,
                self.sample_rate,
                resampling_method="sinc_interp_kaiser",
                lowpass_filter_width=resample_lowpass_width,
                rolloff=resample_rolloff,
                beta=resample_beta,
            )
            # The sinc kernel is derived from the rates: keep it out of the
            # state dict so that checkpoints do not depend on the input rate.
            kernel = self.resampler.kernel
            delattr(self.resampler, "kernel")
            self.resampler.register_buffer("kernel", kernel, persistent=False)
        else:
            self.resampler = None
        # iid masks: one random band per clip, width uniform in [0, freqm).
        self.freq_masking = torchaudio.transforms.FrequencyMasking(self.freqm, iid_masks=True)
        self.time_masking = torchaudio.transforms.TimeMasking(self.timem, iid_masks=True)

        self.register_buffer(
            "window",
            torch.hann_window(self.win_length, periodic=False),
            persistent=False,
        )
        self.register_buffer(
            "mel_banks",
            _mel_banks(n_mels, n_fft, sample_rate, self.fmin, self.fmax),
            persistent=False,
        )
        self.preemphasis = float(preemphasis)
        # The eval-mode bands, split into runs over the bins they cover
        # (``fastast_plugin.models.features.band_groups``).
        self._group_slices = band_groups(self.mel_banks.T)
        for index, (bands, bins) in enumerate(self._group_slices):
            self.register_buffer(
                f"mel_group_{index}",
                self.mel_banks[bands, bins].T.contiguous(),
                persistent=False,
            )
        if self.resampler is not None:
            self.register_buffer(
                "resample_matrix", _block_resampler(self.resampler), persistent=False
            )

    @property
    def silence_value(self) -> float:
        """Output value for digital silence and padding, about -1.40."""
        return (math.log(_LOG_OFFSET) + _NORM_SHIFT) / _NORM_SCALE

    def _resampled_length(self, num_samples: int) -> int:
        """``ceil(num_samples * sample_rate / orig_sample_rate)``, as ``Resample`` gives."""
        if self.resampler is None:
            return num_samples
        gcd = math.gcd(self.orig_sample_rate, self.sample_rate)
        new, orig = self.sample_rate // gcd, self.orig_sample_rate // gcd
        return -(-new * num_samples // orig)

    def num_frames(self, num_samples: int) -> int:
        """Number of output frames for an input of ``num_samples`` samples.

        Arguments
        ---------
        num_samples : int
            Input length at ``orig_sample_rate``.

        Returns
        -------
        int
            ``1 + (L - 1) // hop_length`` with ``L`` the length at
            ``sample_rate`` (pre-emphasis removes one sample), i.e.
            ``L = ceil(num_samples * sample_rate / orig_sample_rate)`` as
            torchaudio's ``Resample`` produces.

        Example
        -------
        >>> DyMNFrontEnd().num_frames(320000)
        1000
        >>> DyMNFrontEnd(orig_sample_rate=16000).num_frames(16001)  # L = 32002
        101
        """
        return 1 + (self._resampled_length(num_samples) - 1) // self.hop_length

    def _batch_mel_banks(self):
        """This batch's bands: ``(bands, bins, weights [bins, bands])`` per run."""
        if not self.training or (self.fmin_aug_range <= 1 and self.fmax_aug_range <= 1):
            return [
                (bands, bins, getattr(self, f"mel_group_{index}"))
                for index, (bands, bins) in enumerate(self._group_slices)
            ]
        fmin = self.fmin + int(torch.randint(max(self.fmin_aug_range, 1), ()))
        fmax = (
            self.fmax
            + self.fmax_aug_range // 2
            - int(torch.randint(max(self.fmax_aug_range, 1), ()))
        )
        banks = _mel_banks(self.n_mels, self.n_fft, self.sample_rate, fmin, fmax)
        return [
            (bands, bins, banks[bands, bins].T.contiguous().to(self.mel_banks.device))
            for bands, bins in band_groups(banks.T)
        ]

    def _resample(self, wavs: torch.Tensor) -> torch.Tensor:
        """``self.resampler(wavs)`` as blocks of one matrix product.

        The same sums as torchaudio's ``Resample`` (a strided convolution
        with its sinc kernel, zero padding at both ends), over a
        block-Toeplitz matrix from ``_block_resampler``: a product of large
        matrices instead of a one-channel convolution, about 4x faster on
        the CPU.
        """
        resampler = self.resampler
        orig = resampler.orig_freq // resampler.gcd
        new = resampler.new_freq // resampler.gcd
        span, outputs = self.resample_matrix.shape
        block = outputs // new  # kernel positions per block
        batch, length = wavs.shape
        positions = length // orig + 1  # torchaudio's convolution outputs
        blocks = -(-positions // block)
        needed = (blocks - 1) * block * orig + span
        padded = F.pad(wavs, (resampler.width, needed - length - resampler.width))
        rows = padded.unfold(1, span, block * orig)[:, :blocks]
        resampled = torch.matmul(rows, self.resample_matrix).view(batch, -1)
        return resampled[:, : self._resampled_length(length)]

    def _log_mel(self, wavs, groups, out):
        """Unnormalised log-mel of equal-length clips into ``out`` ``[batch, frames, n_mels]``.

        On the CPU the clips go through in groups of about
        ``cpu_chunk_frames`` frames (one clip or a few), from resampling on,
        so that every step's tensors stay in the cache; elsewhere all clips
        are one group.
        """
        batch = wavs.shape[0]
        if wavs.device.type == "cpu":
            frames = self.num_frames(wavs.shape[1])
            clips = max(1, min(batch, self.cpu_chunk_frames // frames))
        else:
            clips = batch
        buffers = {}
        for first in range(0, batch, clips):
            last = min(first + clips, batch)
            self._log_mel_group(wavs[first:last], groups, out[first:last], buffers)

    def _log_mel_group(self, wavs, groups, out, buffers):
        """``_log_mel`` of one group of clips, with work tensors shared via ``buffers``."""
        if self.resampler is not None:
            wavs = self._resample(wavs)
        min_samples = self.n_fft // 2 + 2
        if wavs.shape[1] < min_samples:
            raise ValueError(
                f"clips must have at least {min_samples} samples at "
                f"{self.sample_rate} Hz, got {wavs.shape[1]}"
            )
        # y[n] = x[n + 1] - 0.97 x[n], then torch.stft's centring: reflect
        # padding by n_fft // 2 and the window centred in n_fft points.
        wavs = torch.add(wavs[:, 1:], wavs[:, :-1], alpha=-self.preemphasis)
        half = self.n_fft // 2
        padded = F.pad(wavs.unsqueeze(1), (half, half), mode="reflect").squeeze(1)
        frames = padded.unfold(1, self.n_fft, self.hop_length)
        offset = (self.n_fft - self.win_length) // 2
        frames = frames[..., offset : offset + self.win_length]
        clips, count = frames.shape[:2]
        chunk = min(count, self.cpu_chunk_frames) if wavs.device.type == "cpu" else count
        rows = clips * chunk
        if buffers.get("rows", 0) < rows:
            buffers.update(
                rows=rows,
                windowed=wavs.new_zeros(rows, self.n_fft),
                power=wavs.new_empty(rows, self.n_fft // 2 + 1),
                mel=wavs.new_empty(rows, self.n_mels),
            )
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            rows = clips * (stop - start)
            block = buffers["windowed"][:rows].view(clips, stop - start, self.n_fft)
            torch.mul(
                frames[:, start:stop],
                self.window,
                out=block[..., offset : offset + self.win_length],
            )
            parts = torch.view_as_real(torch.fft.rfft(block)).square_()
            power = buffers["power"][:rows].view(clips, stop - start, -1)
            torch.add(parts[..., 0], parts[..., 1], out=power)
            target = out[:, start:stop]
            mel = target.view(rows, -1) if target.is_contiguous() else buffers["mel"][:rows]
            power = power.view(rows, -1)
            for bands, bins, weights in groups:
                torch.mm(power[:, bins], weights, out=mel[:, bands])
            mel.add_(_LOG_OFFSET).log_()
            if mel.data_ptr() != target.data_ptr():
                target.copy_(mel.view(target.shape))

    @fwd_default_precision(cast_inputs=torch.float32)
    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Computes normalised log-mel features.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[batch, samples]`` at ``orig_sample_rate``, raw
            amplitude (no peak normalisation).
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]`` in (0, 1] (SpeechBrain convention);
            None means all clips fill the tensor.

        Returns
        -------
        torch.Tensor
            ``[batch, 1, n_mels, num_frames(samples)]`` in fp32, even under
            autocast.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must have shape [batch, samples], got {tuple(wavs.shape)}")
        batch, num_samples = wavs.shape
        groups = self._batch_mel_banks()
        num_frames = self.num_frames(num_samples)
        if wav_lens is None:
            lengths = torch.full((batch,), num_samples, dtype=torch.long)
        else:
            if wav_lens.shape != (batch,):
                raise ValueError(f"wav_lens must have shape [{batch}], got {tuple(wav_lens.shape)}")
            if bool((wav_lens <= 0).any()) or bool((wav_lens > 1 + 1e-6).any()):
                raise ValueError(f"wav_lens must be in (0, 1], got {wav_lens.tolist()}")
            lengths = torch.round(wav_lens.detach().cpu().double() * num_samples)
            lengths = lengths.long().clamp(1, num_samples)

        # Frame-major while computing; [batch, n_mels, frames] at the end.
        feats = wavs.new_empty(batch, num_frames, self.n_mels)
        if bool((lengths == num_samples).all()):
            self._log_mel(wavs, groups, feats)
        else:
            # Frames past a clip's end: log of the offset alone (silence).
            feats.fill_(math.log(_LOG_OFFSET))
            for length in torch.unique(lengths).tolist():
                index = torch.nonzero(lengths == length).flatten().to(wavs.device)
                frames = self.num_frames(length)
                clip_feats = wavs.new_empty(len(index), frames, self.n_mels)
                self._log_mel(wavs[index, :length], groups, clip_feats)
                feats[index, :frames] = clip_feats

        feats = feats.transpose(1, 2)
        if self.training:
            feats = self.freq_masking(feats)
            feats = self.time_masking(feats)
        out = wavs.new_empty(batch, 1, self.n_mels, num_frames)
        torch.add(feats, _NORM_SHIFT, out=out[:, 0])
        return out.div_(_NORM_SCALE)
