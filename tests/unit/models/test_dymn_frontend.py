"""Unit tests for EfficientAT's log-mel front-end (``fastast_plugin.models.dymn.frontend``).

The reference is ``AugmentMelSTFT`` in EfficientAT's ``models/preprocess.py``
(https://github.com/fschmid56/EfficientAT): pre-emphasis, STFT with a
symmetric Hann window, Kaldi mel filterbank, ``(ln(x + 1e-5) + 4.5) / 5``.

Authors
 * fastast developers 2026
"""

import math

import pytest
import torch
import torch.nn.functional as F
from dymn_layout import calibrated_model
from torchaudio.compliance import kaldi

SILENCE = (math.log(1e-5) + 4.5) / 5


def _mel_edges(n_mels=128, fmin=0.0, fmax=15000.0):
    mel = lambda f: 1127.0 * math.log(1 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (math.exp(m / 1127.0) - 1)  # noqa: E731
    delta = (mel(fmax) - mel(fmin)) / (n_mels + 1)
    edges = [inv(mel(fmin) + i * delta) for i in range(n_mels + 2)]
    return edges


def test_frame_counts():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    assert frontend.num_frames(32000) == 100
    assert frontend.num_frames(160000) == 500
    assert frontend.num_frames(320000) == 1000
    assert frontend(torch.randn(2, 32000)).shape == (2, 1, 128, 100)
    assert frontend(torch.randn(1, 320000)).shape == (1, 1, 128, 1000)
    # 1 + (L - 1) // 320 in general.
    for length in (1000, 32001, 32321, 48000):
        assert frontend(torch.randn(1, length)).shape[-1] == 1 + (length - 1) // 320


def test_mel_filter_properties():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    banks = DyMNFrontEnd().eval().mel_banks
    assert banks.shape == (128, 513) and banks.dtype == torch.float32
    assert (banks >= 0).all() and (banks <= 1).all()
    assert (banks[:, -1] == 0).all()  # Nyquist column
    edges = _mel_edges()
    freqs = torch.arange(513) * 32000 / 1024
    for i in range(128):
        # Non-zero only strictly between the filter's edges (up to float32
        # round-off at the very edge, as in Kaldi).
        assert banks[i].max() > 0.1
        outside = (freqs <= edges[i]) | (freqs >= edges[i + 2])
        assert banks[i][outside].max() < 1e-5
        peak = freqs[banks[i].argmax()]
        assert abs(peak - edges[i + 1]) <= 31.25
    # No area normalisation: the triangles peak at 1, and a filter whose
    # half-width is >= 10 FFT bins has a bin within 1/20 of it of the apex.
    peaks = banks.max(dim=1).values
    wide = [
        i for i in range(128) if min(edges[i + 1] - edges[i], edges[i + 2] - edges[i + 1]) >= 312.5
    ]
    assert len(wide) >= 7 and (peaks[wide] > 0.94).all()
    assert (peaks > 0.18).all() and (peaks <= 1).all()
    assert banks[:, freqs >= 15000].max() < 1e-5
    # Geometry at 32 kHz: centres 17.1 Hz .. 14.6 kHz, 24 of them >= 8 kHz.
    assert round(edges[1], 1) == 17.1 and round(edges[128] / 1000, 1) == 14.6
    assert sum(c >= 8000 for c in edges[1:129]) == 24

    # Same as Kaldi's (torchaudio) banks with a zero Nyquist column.
    reference, _ = kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0, 100.0, -500.0, 1.0)
    torch.testing.assert_close(banks[:, :512], reference, rtol=0, atol=1e-6)
    # And Kaldi's formula in float64, independently of torchaudio: triangles
    # linear in mel between the edges (float32 round-off is about 1.3e-5).
    mel = 1127.0 * torch.log1p(freqs.double() / 700.0)
    edge_mel = [1127.0 * math.log1p(f / 700.0) for f in edges]
    left, centre, right = (torch.tensor(edge_mel[i : i + 128]).double()[:, None] for i in range(3))
    formula = torch.minimum((mel - left) / (centre - left), (right - mel) / (right - centre))
    formula = formula.clamp(min=0.0)
    formula[:, -1] = 0.0
    torch.testing.assert_close(banks.double(), formula, rtol=0, atol=3e-5)


def test_frontend_values():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    assert frontend.silence_value == pytest.approx(SILENCE)
    silence = frontend(torch.zeros(1, 32000))
    torch.testing.assert_close(silence, torch.full_like(silence, SILENCE))
    assert abs(SILENCE - (-1.4026)) < 1e-3

    # A 1 kHz tone lights up the filter centred nearest to 1 kHz.
    centres = _mel_edges()[1:129]
    nearest = min(range(128), key=lambda i: abs(centres[i] - 1000.0))
    t = torch.arange(32000) / 32000
    tone = frontend(0.1 * torch.sin(2 * math.pi * 1000 * t)[None])[0, 0, :, 5:-5]
    assert abs(int(tone.mean(dim=1).argmax()) - nearest) <= 1

    # Manual reference: pre-emphasis, STFT with a symmetric Hann(800)
    # centred in 1024 points, power, mel, log, (x + 4.5) / 5.
    x = torch.randn(2, 8000, dtype=torch.float64)
    emphasised = x[:, 1:] - 0.97 * x[:, :-1]
    window = torch.zeros(1024, dtype=torch.float64)
    window[112:912] = torch.hann_window(800, periodic=False, dtype=torch.float64)
    padded = F.pad(emphasised.unsqueeze(1), (512, 512), mode="reflect").squeeze(1)
    frames = padded.unfold(1, 1024, 320) * window
    power = torch.fft.rfft(frames, dim=-1).abs().square()
    mel = power @ frontend.mel_banks.double().T
    expected = ((torch.log(mel + 1e-5) + 4.5) / 5).transpose(1, 2).unsqueeze(1)
    torch.testing.assert_close(frontend(x.float()), expected.float(), rtol=1e-4, atol=1e-4)


def test_frontend_eval_deterministic_and_training_jitter(monkeypatch):
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd()
    x = torch.randn(2, 16000)
    frontend.eval()
    torch.testing.assert_close(frontend(x), frontend(x), rtol=0, atol=0)

    seen = []
    real = kaldi.get_mel_banks

    def spy(n_mels, n_fft, sample_rate, fmin, fmax, **vtln):
        seen.append((fmin, fmax))
        return real(n_mels, n_fft, sample_rate, fmin, fmax, **vtln)

    monkeypatch.setattr(kaldi, "get_mel_banks", spy)
    frontend.train()
    torch.manual_seed(0)
    outputs = [frontend(x) for _ in range(60)]
    assert len(seen) == 60  # one band per batch
    assert all(0 <= fmin <= 9 and 14001 <= fmax <= 16000 for fmin, fmax in seen)
    assert len({fmax for _, fmax in seen}) > 10
    assert not torch.allclose(outputs[0], outputs[1])
    # No masking by default: no all-zero (0.9 after normalisation) bands.
    assert not any(bool((o == 0.9).all(dim=-1).any()) for o in outputs)

    frontend.eval()
    seen.clear()
    frontend(x)
    assert seen == []


def test_frontend_masks_in_training_only():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd(freqm=40, timem=40)
    x = torch.randn(4, 32000)
    torch.manual_seed(1)
    out = frontend.train()(x)[:, 0]
    masked_value = (0.0 + 4.5) / 5
    freq_masked = (out == masked_value).all(dim=2).sum(dim=1)
    time_masked = (out == masked_value).all(dim=1).sum(dim=1)
    assert (freq_masked < 40).all() and (time_masked < 40).all()
    assert freq_masked.sum() > 0 and time_masked.sum() > 0
    assert len(set(freq_masked.tolist())) > 1 or len(set(time_masked.tolist())) > 1  # iid
    out = frontend.eval()(x)[:, 0]
    assert not (out == masked_value).any()


def test_frontend_independent_of_batch_composition():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    torch.manual_seed(0)
    short = torch.randn(20000)
    long = torch.randn(48000)
    alone = frontend(short[None])
    batch = torch.zeros(2, 48000)
    batch[0, :20000] = short
    batch[1] = long
    out = frontend(batch, torch.tensor([20000 / 48000, 1.0]))
    frames = alone.shape[-1]
    assert frames == 1 + 19999 // 320
    torch.testing.assert_close(out[0, :, :, :frames], alone[0], rtol=0, atol=1e-5)
    padded = out[0, :, :, frames:]
    torch.testing.assert_close(padded, torch.full_like(padded, SILENCE))
    torch.testing.assert_close(out[1:], frontend(long[None]), rtol=0, atol=1e-5)
    # Garbage in the padding does not leak into the clip.
    batch[0, 20000:] = 5.0
    torch.testing.assert_close(frontend(batch, torch.tensor([20000 / 48000, 1.0])), out)


def test_frontend_resamples_16k():
    import torchaudio

    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend16 = DyMNFrontEnd(orig_sample_rate=16000).eval()
    frontend32 = DyMNFrontEnd().eval()
    assert isinstance(frontend16.resampler, torchaudio.transforms.Resample)
    assert frontend32.resampler is None
    assert len(frontend16.state_dict()) == 0
    assert frontend16.num_frames(16000) == 100

    t16 = torch.arange(16000) / 16000
    t32 = torch.arange(32000) / 32000
    # A 1 kHz tone at 16 kHz looks like the same tone at 32 kHz.
    tone16 = frontend16(0.3 * torch.sin(2 * math.pi * 1000 * t16)[None])
    tone32 = frontend32(0.3 * torch.sin(2 * math.pi * 1000 * t32)[None])
    assert tone16.shape == tone32.shape == (1, 1, 128, 100)
    strong = tone32[..., 5:-5] > 0
    torch.testing.assert_close(
        tone16[..., 5:-5][strong], tone32[..., 5:-5][strong], rtol=0, atol=0.02
    )

    # Band-limited: a 7 kHz tone leaves no 9 kHz image (naive upsampling
    # by sample repetition does), and nothing above 8 kHz.
    centres = _mel_edges()[1:129]
    at_9k = min(range(128), key=lambda i: abs(centres[i] - 9000.0))
    at_7k = min(range(128), key=lambda i: abs(centres[i] - 7000.0))
    high = 0.5 * torch.sin(2 * math.pi * 7000 * t16)[None]
    proper = frontend16(high)[0, 0, :, 5:-5]
    naive = frontend32(high.repeat_interleave(2, dim=1))[0, 0, :, 5:-5]
    assert proper[at_7k].mean() > 2.0
    assert proper[at_9k].max() < SILENCE + 0.1
    assert naive[at_9k].mean() > 2.0
    left_edges = _mel_edges()[:128]
    above_8k = [i for i in range(128) if left_edges[i] > 8000]
    assert len(above_8k) >= 20
    assert proper[above_8k].max() < SILENCE + 0.1

    # Relative lengths refer to the 16 kHz input.
    batch = torch.zeros(2, 16000)
    batch[0, :8000] = torch.randn(8000)
    batch[1] = torch.randn(16000)
    out = frontend16(batch, torch.tensor([0.5, 1.0]))
    alone = frontend16(batch[:1, :8000])
    torch.testing.assert_close(out[:1, ..., : alone.shape[-1]], alone, rtol=0, atol=1e-5)


def test_frontend_fp32_under_autocast():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    x = torch.randn(2, 16000)
    reference = frontend(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = frontend(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, frontend(x.bfloat16().float()))
    assert reference.dtype == torch.float32


def test_frontend_argument_errors():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    with pytest.raises(ValueError, match="hop_length.*0"):
        DyMNFrontEnd(hop_length=0)
    with pytest.raises(ValueError, match="fmax"):
        DyMNFrontEnd(fmax=16000.0)
    frontend = DyMNFrontEnd().eval()
    with pytest.raises(ValueError, match=r"\[batch, samples\].*\(16000,\)"):
        frontend(torch.randn(16000))
    with pytest.raises(ValueError, match="wav_lens"):
        frontend(torch.randn(2, 16000), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least 514 samples"):
        frontend(torch.randn(1, 300))


def test_frontend_then_dymn():
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
    from fastast_plugin.models.dymn.model import DyMN

    frontend = DyMNFrontEnd(orig_sample_rate=16000).eval()
    model = DyMN(num_classes=50, width_mult=0.4).eval()
    with torch.no_grad():
        mel = frontend(torch.randn(2, 16000 * 5))
        assert mel.shape == (2, 1, 128, 500)
        assert model.forward_features(mel).shape == (2, 384, 4, 16)
        assert model(mel).shape == (2, 50)


def test_device_parity(device):
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd(orig_sample_rate=16000).eval()
    model = calibrated_model(5)
    wavs = torch.randn(2, 16000)
    wav_lens = torch.tensor([1.0, 0.75])
    with torch.no_grad():
        reference = model(frontend(wavs, wav_lens))
        frontend, model = frontend.to(device), model.to(device)
        mel = frontend(wavs.to(device), wav_lens.to(device))
        out = model(mel)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            assert frontend(wavs.to(device), wav_lens.to(device)).dtype == torch.float32
    assert mel.device.type == torch.device(device).type
    torch.testing.assert_close(out.cpu(), reference, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("orig_sample_rate", [16000, 8000, 44100, 22050])
def test_block_resampler_equals_torchaudio(orig_sample_rate):
    """One matrix product per block of outputs, the sums of torchaudio's convolution."""
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    frontend = DyMNFrontEnd(orig_sample_rate=orig_sample_rate).eval()
    g = torch.Generator().manual_seed(orig_sample_rate)
    for length in (1000, 4321, orig_sample_rate):
        wavs = torch.randn(2, length, generator=g)
        expected = frontend.resampler(wavs)
        resampled = frontend._resample(wavs)
        assert resampled.shape == expected.shape
        # float32 sums of ~140 products of unit-size terms, in another order.
        torch.testing.assert_close(resampled, expected, rtol=0, atol=2e-6)


def test_frontend_blocks_do_not_change_features(monkeypatch):
    """Frames are computed in cache-sized blocks; the blocking changes nothing."""
    from fastast_plugin.models.dymn.frontend import DyMNFrontEnd

    torch.manual_seed(3)
    batch = torch.randn(3, 24000)
    wav_lens = torch.tensor([1.0, 0.5, 1.0])
    whole = DyMNFrontEnd(orig_sample_rate=16000).eval()(batch, wav_lens)
    for chunk in (7, 40):
        monkeypatch.setattr(DyMNFrontEnd, "cpu_chunk_frames", chunk)
        blocked = DyMNFrontEnd(orig_sample_rate=16000).eval()(batch, wav_lens)
        torch.testing.assert_close(blocked, whole, rtol=0, atol=1e-6)
