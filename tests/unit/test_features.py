"""KaldiFbank against torchaudio's per-clip Kaldi fbank, as AST calls it."""

import math

import pytest
import torch
import torchaudio

from fastast_plugin.features import KaldiFbank, num_frames


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
    feats = KaldiFbank()(batch.to(device), rel.to(device)).cpu()
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
    fbank = KaldiFbank(target_length=128, mean=mean, std=std)
    feats = fbank(batch.to(device), torch.tensor([16000 / 24000, 1.0]).to(device))
    for i, clip in enumerate(clips):
        ref = ast_reference(clip, 128, mean, std)
        assert (feats[i].cpu() - ref).abs().max() <= 1e-4 / (2 * std)


def test_padding_does_not_change_features():
    clip = real_like(16000, 3)
    alone = KaldiFbank()(clip[None])
    padded = torch.cat([clip, torch.randn(8000)])[None]
    in_batch = KaldiFbank()(padded, torch.tensor([16000 / 24000]))
    assert torch.equal(in_batch[0, : alone.shape[1]], alone[0])


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
