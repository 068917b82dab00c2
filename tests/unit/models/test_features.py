"""KaldiFbank against torchaudio's per-clip Kaldi fbank, as AST calls it."""

import math

import pytest
import torch
import torchaudio

from fastast_plugin.models.features import (
    AUDIOSET_MEAN,
    AUDIOSET_STD,
    KaldiFbank,
    band_groups,
    num_frames,
)


def ast_reference(wav, target_length=None, mean=None, std=None):
    """AST's data loader, one clip: mean removal, fbank, pad/crop, norm."""
    wav = wav - wav.mean()
    fbank = torchaudio.compliance.kaldi.fbank(
        wav[None],
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    if target_length is not None:
        missing = target_length - fbank.shape[0]
        if missing > 0:
            fbank = torch.nn.ZeroPad2d((0, 0, 0, missing))(fbank)
        else:
            fbank = fbank[:target_length]
    if mean is not None:
        fbank = (fbank - mean) / (2 * std)
    return fbank


def real_like(num_samples, seed):
    """A harmonic tone with vibrato, a click train and noise, with a DC offset."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples) / 16000
    f0 = 180 + 40 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / 16000
    tone = sum(torch.sin(k * phase) / k for k in range(1, 6))
    clicks = (torch.arange(num_samples) % 1600 == 0).float()
    noise = 0.05 * torch.randn(num_samples, generator=g)
    return 0.3 * tone + clicks + noise + 0.2


@pytest.mark.parametrize("kind", ["random", "real_like"])
def test_batch_matches_per_clip_reference(kind, device):
    lengths = [16000, 12345, 8000, 401]
    g = torch.Generator().manual_seed(0)
    clips = [
        torch.randn(n, generator=g) if kind == "random" else real_like(n, i)
        for i, n in enumerate(lengths)
    ]
    batch = torch.zeros(len(clips), max(lengths))
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    rel = torch.tensor(lengths) / max(lengths)
    feats = KaldiFbank().to(device)(batch.to(device), rel.to(device)).cpu()
    assert feats.shape == (4, num_frames(16000), 128)
    for i, clip in enumerate(clips):
        ref = ast_reference(clip)
        n = ref.shape[0]
        assert n == num_frames(len(clip))
        assert (feats[i, :n] - ref).abs().max() <= 1e-4
        assert torch.all(feats[i, n:] == 0)  # padding frames are zero


def test_target_length_and_normalisation_match_ast(device):
    mean, std = -6.845978, 5.5654526
    clips = [real_like(16000, 1), real_like(24000, 2)]
    batch = torch.zeros(2, 24000)
    batch[0, :16000], batch[1] = clips
    fbank = KaldiFbank(target_length=128, mean=mean, std=std).to(device)
    feats = fbank(batch.to(device), torch.tensor([16000 / 24000, 1.0]).to(device))
    for i, clip in enumerate(clips):
        ref = ast_reference(clip, 128, mean, std)
        assert (feats[i].cpu() - ref).abs().max() <= 1e-4 / (2 * std)


def test_audioset_statistics_normalise_as_ast():
    """AST's AudioSet statistics (YuanGongND/ast egs/audioset/run.sh)."""
    assert (AUDIOSET_MEAN, AUDIOSET_STD) == (-4.2677393, 4.5689974)
    clip = real_like(16000, 4)
    plain = KaldiFbank(target_length=128)(clip[None])[0]
    normed = KaldiFbank(target_length=128, mean=AUDIOSET_MEAN, std=AUDIOSET_STD)(clip[None])[0]
    torch.testing.assert_close(normed, (plain - AUDIOSET_MEAN) / (2 * AUDIOSET_STD))


def test_padding_does_not_change_features():
    clip = real_like(16000, 3)
    alone = KaldiFbank()(clip[None])
    padded = torch.cat([clip, torch.randn(8000)])[None]
    in_batch = KaldiFbank()(padded, torch.tensor([16000 / 24000]))
    assert torch.equal(in_batch[0, : alone.shape[1]], alone[0])


def test_silence_padding_is_what_digital_silence_gives(device):
    """padding="silence": frames past a clip's end (and up to target_length)
    hold the features of a zero waveform, normalised like the clip; the clip's
    own frames are AST's."""
    mean, std = -6.845978, 5.5654526
    clip = real_like(12000, 5)
    batch = torch.zeros(2, 16000)
    batch[0, :12000], batch[1] = clip[:12000], real_like(16000, 6)
    rel = torch.tensor([0.75, 1.0])
    silent = KaldiFbank(target_length=128, mean=mean, std=std, padding="silence").to(device)
    feats = silent(batch.to(device), rel.to(device)).cpu()
    silence = ast_reference(torch.zeros(16000), 128, mean, std)[:98]
    assert silence.unique().numel() == 1
    n = num_frames(12000)
    assert torch.equal(feats[0, n:], silence[0].expand(128 - n, -1))
    assert torch.equal(feats[1, 98:], silence[0].expand(30, -1))
    ast_padded = KaldiFbank(target_length=128, mean=mean, std=std).to(device)
    reference = ast_padded(batch.to(device), rel.to(device)).cpu()
    assert torch.equal(feats[0, :n], reference[0, :n])
    assert torch.equal(feats[1, :98], reference[1, :98])
    with pytest.raises(ValueError, match="padding.*'loud'"):
        KaldiFbank(padding="loud")


def test_stays_fp32_under_autocast():
    wavs = torch.randn(2, 16000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = KaldiFbank()(wavs)
    assert feats.dtype == torch.float32
    assert torch.equal(feats, KaldiFbank()(wavs))


@pytest.mark.parametrize(
    "wavs, lens, message",
    [
        (torch.randn(2, 100), None, "shorter than one window"),
        (torch.randn(2, 16000, 2), None, "mono"),
        (torch.randn(2, 16000), torch.tensor([1.0, 0.0]), "relative lengths"),
        (torch.randn(2, 16000), torch.tensor([1.0]), "shape"),
    ],
)
def test_bad_input_is_named(wavs, lens, message):
    with pytest.raises(ValueError, match=message):
        KaldiFbank()(wavs, lens)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="mean"):
        KaldiFbank(mean=1.0)
    with pytest.raises(ValueError, match="std"):
        KaldiFbank(mean=1.0, std=0.0)


def test_matches_reference_with_two_threads():
    """Clips longer than one thread's share of a reduction (> 32768 samples).

    With several threads, torch splits a long 1-D mean across them, so the
    clip mean of a batched reduction differs from AST's by an ulp, and the
    lowest bands then move by up to ~1e-3: each clip's mean must be its own.
    """
    g = torch.Generator().manual_seed(5)
    batch = torch.randn(3, 80000, generator=g) + 0.1
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        feats = KaldiFbank()(batch)
        refs = [ast_reference(clip) for clip in batch]
    finally:
        torch.set_num_threads(previous)
    for i, ref in enumerate(refs):
        assert (feats[i] - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("target_length", [None, 60, 200])
def test_blocks_do_not_change_features(target_length, monkeypatch):
    """Frames are computed in cache-sized blocks; the blocking changes nothing.

    Up to the FFT every block computes the same bits; only the mel sums may
    round differently for tiny blocks (~5e-7), far below the ~1e-4 an FFT
    input change of one ulp would cause in the low bands.
    """
    lengths = [16000, 9000, 24000]
    batch = torch.zeros(3, 24000)
    for i, n in enumerate(lengths):
        batch[i, :n] = real_like(n, 10 + i)
    rel = torch.tensor(lengths) / 24000
    whole = KaldiFbank(target_length=target_length, mean=-4.0, std=4.0)(batch, rel)
    for chunk in (7, 100, 150):
        monkeypatch.setattr(KaldiFbank, "cpu_chunk_frames", chunk)
        blocked = KaldiFbank(target_length=target_length, mean=-4.0, std=4.0)(batch, rel)
        assert (blocked - whole).abs().max() <= 1e-6, chunk
    for i, n in enumerate(lengths):
        ref = ast_reference(batch[i, :n], target_length, -4.0, 4.0)
        frames = ref.shape[0]
        assert (whole[i, :frames] - ref).abs().max() <= 1e-4 / 8
        # Past the clip, AST's zero padding after normalisation.
        assert torch.all(whole[i, frames:] == (0.0 + 4.0) / 8)


def test_band_groups_cover_every_weight():
    banks = KaldiFbank().mel_banks  # [bins, bands]
    covered = torch.zeros_like(banks, dtype=torch.bool)
    groups = band_groups(banks)
    assert len(groups) == 8
    for bands, bins in groups:
        covered[bins, bands] = True
    assert not (banks.ne(0) & ~covered).any()
    # The grouped products are the dense product.
    power = torch.rand(50, 257, dtype=torch.float64)
    grouped = torch.zeros(50, 128, dtype=torch.float64)
    for bands, bins in groups:
        grouped[:, bands] = power[:, bins] @ banks.double()[bins, bands]
    torch.testing.assert_close(grouped, power @ banks.double(), rtol=1e-12, atol=0)
    # ...at a fraction of the work.
    work = sum((b.stop - b.start) * (n.stop - n.start) for n, b in groups)
    assert work < 0.2 * banks.numel()
