"""AST's training-time augmentation for batches: SpecAugment masks, mixup, noise + roll.

AST (``src/dataloader.py``) augments clip by clip inside the dataset. These
modules do the same on a padded batch, independently for every clip, so the
Brain can run them on the device:

* ``SpecAugment``: one frequency mask and one time mask per clip, each of a
  width drawn uniformly from ``{0, ..., width - 1}``, filled with the value
  AST's masks hold (torchaudio's ``FrequencyMasking`` / ``TimeMasking``, as
  AST).
* ``Mixup``: ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha,
  alpha)`` per clip, applied to a clip with probability ``prob``; the returned
  ``MixupInfo`` mixes the targets (or a teacher's outputs) the same way.
* ``NoiseRoll``: AST's SpeechCommands ``noise`` option, uniform noise scaled
  by a random level, then a circular shift along time.

Where AST masks: AST masks the log-mel features *before* normalising them,
with the value 0, and normalises afterwards with ``(x - mean) / (2 std)``.
``KaldiFbank`` normalises inside, so ``SpecAugment`` works on normalised
features and fills masks with ``(0 - mean) / (2 std)``, the normalised image
of 0: normalisation is element-wise and affine, so masking before or after it
gives identical features. Pass the same ``mean`` and ``std`` as to
``KaldiFbank``.

Mixup partner: AST draws the partner of each clip uniformly from the whole
training set. Here the partner is ``x[perm]`` for a random permutation of the
batch: with shuffled batches the partner is still a uniformly random training
clip, but it is also a clip of the same batch (each clip is used once as a
partner per batch) and a clip is its own partner with probability
``1 / batch`` (then nothing changes). AST mixes waveforms; ``Mixup`` mixes any
tensor, so the Brain can mix waveforms or features (``level``).

Authors
 * fastast developers 2026
"""

from typing import NamedTuple

import torch
from torch import nn
from torchaudio.transforms import FrequencyMasking, TimeMasking

__all__ = ["Mixup", "MixupInfo", "NoiseRoll", "SpecAugment"]


class MixupInfo(NamedTuple):
    """How a batch was mixed: clip ``i`` became ``lam[i] * x[i] + (1 - lam[i]) * x[perm[i]]``.

    Arguments
    ---------
    perm : torch.Tensor
        ``[batch]`` partner index of each clip (a permutation).
    lam : torch.Tensor
        ``[batch]`` weight of the clip itself; 1.0 for clips left unmixed.

    Example
    -------
    >>> info = MixupInfo(torch.tensor([1, 0]), torch.tensor([0.75, 1.0]))
    >>> info.mix(torch.eye(2))
    tensor([[0.7500, 0.2500],
            [0.0000, 1.0000]])
    """

    perm: torch.Tensor
    lam: torch.Tensor

    def mix(self, x):
        """Mix any batch-first tensor (inputs, targets, teacher outputs) the same way.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, ...]``.

        Returns
        -------
        torch.Tensor
            ``lam * x + (1 - lam) * x[perm]``, same shape and dtype as ``x``.
            For one-hot or multi-hot targets this equals AST's label vector
            (a class present in both clips gets ``lam + (1 - lam) = 1``).
        """
        if x.shape[0] != self.perm.shape[0]:
            raise ValueError(
                f"MixupInfo.mix: batch of {x.shape[0]} items, but the mixup "
                f"was drawn for {self.perm.shape[0]}"
            )
        lam = self.lam.to(device=x.device, dtype=x.dtype)
        lam = lam.view(-1, *([1] * (x.dim() - 1)))
        return lam * x + (1 - lam) * x[self.perm.to(x.device)]


class Mixup(nn.Module):
    """Mix each clip with a partner from the same batch (AST's mixup).

    Arguments
    ---------
    alpha : float
        ``lam ~ Beta(alpha, alpha)`` (AST: 10).
    prob : float
        Probability that a clip is mixed (AST's ``mixup``); the others keep
        ``lam = 1``. 0 disables mixup.
    level : str
        Where the Brain applies it: ``"waveform"`` (as AST: before the
        features; the mixed clip keeps the first clip's length, the partner
        being zero-padded or cut) or ``"fbank"`` (on the padded features).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> mixup = Mixup(alpha=10.0, prob=1.0)
    >>> mixed, info = mixup(torch.eye(4))
    >>> torch.allclose(mixed, info.mix(torch.eye(4)))
    True
    >>> bool(((info.lam > 0) & (info.lam < 1)).all())
    True
    """

    def __init__(self, alpha: float = 10.0, prob: float = 1.0, level: str = "waveform"):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"Mixup `alpha` must be > 0, got {alpha}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"Mixup `prob` must be in [0, 1], got {prob}")
        if level not in ("waveform", "fbank"):
            raise ValueError(f"Mixup `level` must be 'waveform' or 'fbank', got {level!r}")
        self.alpha = float(alpha)
        self.prob = float(prob)
        self.level = level

    @property
    def enabled(self):
        """Whether any clip can be mixed (``prob > 0``)."""
        return self.prob > 0

    def sample(self, batch_size, device=None):
        """Draw a permutation and per-clip weights for one batch.

        Arguments
        ---------
        batch_size : int
            Number of clips.
        device : torch.device, optional
            Where the returned tensors live.

        Returns
        -------
        MixupInfo
            Partners and weights; unmixed clips have ``lam = 1``.

        Example
        -------
        >>> info = Mixup(prob=0.0).sample(3)
        >>> info.lam
        tensor([1., 1., 1.])
        """
        perm = torch.randperm(batch_size, device=device)
        beta = torch.distributions.Beta(torch.tensor(self.alpha), torch.tensor(self.alpha))
        lam = beta.sample((batch_size,)).to(device)
        mixed = torch.rand(batch_size, device=device) < self.prob
        lam = torch.where(mixed, lam, torch.ones_like(lam))
        return MixupInfo(perm, lam)

    def forward(self, x):
        """Mix a batch.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, ...]`` waveforms or features.

        Returns
        -------
        mixed : torch.Tensor
            Same shape as ``x``.
        info : MixupInfo
            Apply ``info.mix`` to the targets.
        """
        info = self.sample(x.shape[0], x.device)
        return info.mix(x), info


class _FeatureAugment(nn.Module):
    """Base of the feature augmentations: ``aug(feats, lengths)`` on ``[batch, time, freq]``.

    Checks the shape, returns the input itself when the augmentation is
    disabled (``enabled`` False), else ``augment(feats)``. Subclasses
    define ``enabled`` and ``augment``.

    Example
    -------
    >>> class Negate(_FeatureAugment):
    ...     enabled = True
    ...     def augment(self, feats):
    ...         return -feats
    >>> Negate()(torch.ones(1, 2, 3)).sum().item()
    -6.0
    """

    def forward(self, feats, lengths=None):
        """Augment a batch of features.

        Arguments
        ---------
        feats : torch.Tensor
            ``[batch, time, freq]``.
        lengths : torch.Tensor, optional
            Relative lengths; unused (AST augments the padded spectrogram).

        Returns
        -------
        torch.Tensor
            A new tensor of the same shape (``feats`` itself when disabled).
        """
        if feats.dim() != 3:
            raise ValueError(
                f"{type(self).__name__} expects features [batch, time, freq], got "
                f"shape {tuple(feats.shape)}"
            )
        if not self.enabled:
            return feats
        return self.augment(feats)


class SpecAugment(_FeatureAugment):
    """One frequency mask and one time mask per clip: torchaudio's masks, as AST calls them.

    AST (``src/dataloader.py``) calls ``torchaudio.transforms.FrequencyMasking(freqm)``
    then ``TimeMasking(timem)`` on each clip: a band of width drawn
    uniformly from ``{0, ..., param - 1}`` at a uniformly random position,
    filled with 0 before normalisation. Here the same two transforms run on
    the whole batch with ``iid_masks=True``, which draws every clip's bands
    independently, as AST's clip-by-clip calls do. Masks cover the whole
    ``target_length`` frames, padding included, as in AST.

    Arguments
    ---------
    freq_mask_width : int
        AST's ``freqm``: frequency masks are narrower than this (0: none).
    time_mask_width : int
        AST's ``timem``: time masks are shorter than this (0: none).
    mean : float, optional
        The ``mean`` given to ``KaldiFbank``.
    std : float, optional
        The ``std`` given to ``KaldiFbank``. With both, masks hold
        ``(0 - mean) / (2 std)``, which is 0 before normalisation, as in AST;
        without them (unnormalised features), masks hold 0.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> aug = SpecAugment(48, 48, mean=-6.845978, std=5.5654526)
    >>> feats = torch.randn(2, 128, 128)
    >>> out = aug(feats)
    >>> out.shape, round(aug.mask_value, 4)
    (torch.Size([2, 128, 128]), 0.615)
    >>> bool(((out == feats) | (out == aug.mask_value)).all())
    True
    """

    def __init__(
        self,
        freq_mask_width: int = 0,
        time_mask_width: int = 0,
        mean: float = None,
        std: float = None,
    ):
        super().__init__()
        for name, value in (
            ("freq_mask_width", freq_mask_width),
            ("time_mask_width", time_mask_width),
        ):
            if int(value) != value or value < 0:
                raise ValueError(f"SpecAugment `{name}` must be an integer >= 0, got {value}")
        if (mean is None) != (std is None):
            raise ValueError(
                "SpecAugment needs both `mean` and `std` (those of KaldiFbank) "
                f"or neither, got mean={mean}, std={std}"
            )
        if std is not None and std <= 0:
            raise ValueError(f"SpecAugment `std` must be > 0, got {std}")
        self.freq_mask_width = int(freq_mask_width)
        self.time_mask_width = int(time_mask_width)
        self.mask_value = 0.0 if mean is None else (0.0 - mean) / (2 * std)
        self.freq_masking = FrequencyMasking(self.freq_mask_width, iid_masks=True)
        self.time_masking = TimeMasking(self.time_mask_width, iid_masks=True)

    @property
    def enabled(self):
        """Whether any mask can be drawn."""
        return self.freq_mask_width > 0 or self.time_mask_width > 0

    def augment(self, feats):
        """One frequency and one time band per clip, ``[batch, time, freq]`` in and out (see ``forward``)."""
        # torchaudio's layout: [batch, channel, freq, time]
        spec = feats.transpose(1, 2).unsqueeze(1)
        spec = self.freq_masking(spec, self.mask_value)
        spec = self.time_masking(spec, self.mask_value)
        return spec.squeeze(1).transpose(1, 2)


class NoiseRoll(_FeatureAugment):
    """AST's SpeechCommands ``noise``: uniform noise, then a random circular time shift.

    For each clip, ``x + U(0, 1)[time, freq] * U(0, 1) * noise_scale`` (AST:
    ``noise_scale = 0.1``), then ``torch.roll`` along time by an integer
    drawn uniformly from ``[-max_shift, max_shift)`` (AST: 10, i.e. -10..9
    frames). Applied to the normalised features, as in AST.

    Arguments
    ---------
    noise_scale : float
        Largest noise level (0: no noise).
    max_shift : int
        Shift range in frames (0: no roll).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> roll_only = NoiseRoll(noise_scale=0.0, max_shift=3)
    >>> out = roll_only(torch.arange(8.0).view(1, 8, 1))
    >>> sorted(out.flatten().tolist()) == list(range(8))
    True
    """

    def __init__(self, noise_scale: float = 0.1, max_shift: int = 10):
        super().__init__()
        if noise_scale < 0:
            raise ValueError(f"NoiseRoll `noise_scale` must be >= 0, got {noise_scale}")
        if int(max_shift) != max_shift or max_shift < 0:
            raise ValueError(f"NoiseRoll `max_shift` must be an integer >= 0, got {max_shift}")
        self.noise_scale = float(noise_scale)
        self.max_shift = int(max_shift)

    @property
    def enabled(self):
        """Whether the module changes its input."""
        return self.noise_scale > 0 or self.max_shift > 0

    def augment(self, feats):
        """Noise, then a roll along time, clip by clip, ``[batch, time, freq]`` in and out (see ``forward``)."""
        batch, frames, bins = feats.shape
        if self.noise_scale > 0:
            level = torch.rand(batch, 1, 1, device=feats.device, dtype=feats.dtype)
            noise = torch.rand_like(feats) * level * self.noise_scale
            feats = feats + noise
        if self.max_shift > 0:
            shift = torch.randint(-self.max_shift, self.max_shift, (batch, 1), device=feats.device)
            # torch.roll(x, s, time)[t] = x[(t - s) mod frames], clip by clip
            source = (torch.arange(frames, device=feats.device) - shift) % frames
            feats = feats.gather(1, source[:, :, None].expand(-1, -1, bins))
        return feats
