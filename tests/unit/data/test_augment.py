"""Unit tests for fastast_plugin.data.augment (AST-style SpecAugment, mixup, noise + roll).

SpecAugment runs torchaudio's ``FrequencyMasking`` / ``TimeMasking``, the
transforms AST calls; the tests check AST's semantics through them (band
widths in ``{0, ..., param - 1}``, one band per clip and axis, AST's mask
value, masks drawn independently per clip).

Authors
 * fastast developers 2026
"""

import pytest
import torch

from fastast_plugin.data.augment import Mixup, MixupInfo, NoiseRoll, SpecAugment
from fastast_plugin.models.features import KaldiFbank

SC_MEAN, SC_STD = -6.845978, 5.5654526


def _masks(aug, batch, frames, bins, device="cpu"):
    """``[batch, frames]`` and ``[batch, bins]`` masks SpecAugment drew on a batch of ones.

    A frame (bin) is masked when the whole frame (bin) holds the mask value:
    the other axis' band never covers a whole frame (bin) here.
    """
    masked = aug(torch.ones(batch, frames, bins, device=device)) == aug.mask_value
    return masked.all(2), masked.all(1)


def _bands(mask):
    """Number of contiguous True runs per row of a boolean [batch, size] mask."""
    starts = mask & ~torch.nn.functional.pad(mask, (1, 0))[:, :-1]
    return starts.sum(1)


# ---------------------------------------------------------------------------
# SpecAugment
# ---------------------------------------------------------------------------
def test_masks_are_one_band_narrower_than_the_parameter(device):
    torch.manual_seed(0)
    aug = SpecAugment(freq_mask_width=48, time_mask_width=20)
    time_mask, freq_mask = _masks(aug, 2000, 128, 128, device)
    freq_width, time_width = freq_mask.sum(1), time_mask.sum(1)
    assert int(freq_width.max()) == 47 and int(freq_width.min()) == 0
    assert int(time_width.max()) == 19 and int(time_width.min()) == 0
    # widths uniform on {0..param-1}: mean (param - 1) / 2, every value drawn
    assert abs(freq_width.float().mean().item() - 23.5) < 1.0
    assert set(time_width.tolist()) == set(range(20))
    nonempty = freq_width > 0
    assert bool((_bands(freq_mask)[nonempty] == 1).all())
    assert bool((_bands(time_mask)[time_width > 0] == 1).all())
    # band positions cover the axis from its first position; as in AST, the
    # last is never masked (torchaudio floors the real start and adds the
    # floored width, so a band ends before start + width < size)
    assert bool(freq_mask[:, 0].any()) and bool(freq_mask[:, -2].any())
    assert not bool(freq_mask[:, -1].any()) and not bool(time_mask[:, -1].any())


def test_masked_value_is_ast_zero_before_normalisation(device):
    torch.manual_seed(1)
    aug = SpecAugment(24, 24, mean=SC_MEAN, std=SC_STD)
    assert aug.mask_value == pytest.approx((0 - SC_MEAN) / (2 * SC_STD))
    feats = torch.randn(8, 128, 128, device=device)
    out = aug(feats)
    changed = out != feats
    assert bool(changed.any())
    assert torch.all(out[changed] == aug.mask_value)
    # a masked cell lies in a masked frame or a masked bin: whole rows/columns
    for clip in range(8):
        rows = changed[clip].all(1)
        cols = changed[clip].all(0)
        assert torch.equal(changed[clip], rows[:, None] | cols[None, :])


def test_masking_normalised_features_equals_ast_order(device):
    """AST masks raw log-mels with 0, then normalises; we mask normalised features."""
    wavs = torch.randn(3, 16000, device=device) * 0.1
    raw = KaldiFbank(target_length=128).to(device)(wavs)
    normalised = KaldiFbank(target_length=128, mean=SC_MEAN, std=SC_STD).to(device)(wavs)
    aug_raw = SpecAugment(30, 30)
    aug_norm = SpecAugment(30, 30, mean=SC_MEAN, std=SC_STD)
    torch.manual_seed(7)
    ast_order = (aug_raw(raw) - SC_MEAN) / (2 * SC_STD)
    torch.manual_seed(7)
    ours = aug_norm(normalised)
    torch.testing.assert_close(ours, ast_order, rtol=1e-5, atol=1e-5)


def test_zero_widths_leave_features_untouched():
    feats = torch.randn(2, 50, 64)
    assert SpecAugment(0, 0)(feats) is feats
    assert not SpecAugment(0, 0).enabled


def test_masks_differ_between_clips():
    torch.manual_seed(3)
    time_mask, _ = _masks(SpecAugment(0, 40), 64, 128, 128)
    assert len({tuple(row.nonzero().flatten().tolist()) for row in time_mask}) > 32


@pytest.mark.parametrize(
    "kwargs",
    [{"freq_mask_width": -1}, {"time_mask_width": 2.5}, {"mean": 1.0}, {"mean": 0.0, "std": 0.0}],
)
def test_spec_augment_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="SpecAugment"):
        SpecAugment(**kwargs)


# ---------------------------------------------------------------------------
# Mixup
# ---------------------------------------------------------------------------
def test_mixup_mixes_inputs_and_targets_with_the_same_partner_and_lambda(device):
    torch.manual_seed(0)
    x = torch.randn(16, 400, device=device)
    labels = torch.randint(0, 5, (16,), device=device)
    targets = torch.nn.functional.one_hot(labels, 5).float()
    mixed, info = Mixup(alpha=10.0, prob=1.0)(x)
    assert sorted(info.perm.tolist()) == list(range(16))
    for i in range(16):
        lam, j = info.lam[i], info.perm[i]
        torch.testing.assert_close(mixed[i], lam * x[i] + (1 - lam) * x[j])
        expected = torch.zeros(5, device=device)
        expected[labels[i]] += lam
        expected[labels[j]] += 1 - lam  # AST's label vector, accumulated with +=
        torch.testing.assert_close(info.mix(targets)[i], expected)
    torch.testing.assert_close(info.mix(targets).sum(1), torch.ones(16, device=device))


def test_mixup_lambda_follows_beta_10_10_and_prob():
    torch.manual_seed(0)
    info = Mixup(alpha=10.0, prob=0.6).sample(20000)
    mixed = info.lam < 1
    assert abs(mixed.float().mean().item() - 0.6) < 0.02
    lam = info.lam[mixed]
    assert abs(lam.mean().item() - 0.5) < 0.01
    assert abs(lam.var().item() - 1 / 84) < 0.002  # Beta(a, a): 1 / (4 (2a + 1))
    assert bool((info.lam[~mixed] == 1).all())


def test_mixup_with_prob_zero_is_identity():
    x = torch.randn(4, 10)
    mixed, info = Mixup(prob=0.0)(x)
    torch.testing.assert_close(mixed, x)
    assert not Mixup(prob=0.0).enabled


def test_mixup_info_rejects_other_batch_sizes():
    info = MixupInfo(torch.tensor([1, 0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="batch of 3"):
        info.mix(torch.zeros(3, 2))


@pytest.mark.parametrize("kwargs", [{"alpha": 0}, {"prob": 1.5}, {"level": "logits"}])
def test_mixup_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Mixup"):
        Mixup(**kwargs)


# ---------------------------------------------------------------------------
# Noise + roll
# ---------------------------------------------------------------------------
def test_roll_is_a_per_clip_torch_roll_within_range():
    torch.manual_seed(0)
    feats = torch.randn(32, 128, 4)
    out = NoiseRoll(noise_scale=0.0, max_shift=10)(feats)
    shifts = []
    for clip in range(32):
        rolls = {s: torch.roll(feats[clip], s, 0) for s in range(-10, 10)}
        matches = [s for s, rolled in rolls.items() if torch.equal(out[clip], rolled)]
        assert len(matches) == 1, f"clip {clip} is not a roll by [-10, 10) frames"
        shifts.append(matches[0])
    assert len(set(shifts)) > 5


def test_noise_is_uniform_with_a_random_level_per_clip():
    torch.manual_seed(0)
    feats = torch.zeros(64, 128, 128)
    noise = NoiseRoll(noise_scale=0.1, max_shift=0)(feats)
    assert float(noise.min()) >= 0 and float(noise.max()) < 0.1
    levels = noise.amax(dim=(1, 2))
    assert float(levels.std()) > 0.01  # the level varies from clip to clip
    # within a clip the noise is uniform on [0, level): mean ~ level / 2
    torch.testing.assert_close(noise.mean(dim=(1, 2)), levels / 2, atol=2e-3, rtol=0.05)


def test_noise_roll_disabled():
    feats = torch.randn(2, 8, 3)
    torch.testing.assert_close(NoiseRoll(0.0, 0)(feats), feats)
    assert not NoiseRoll(0.0, 0).enabled
