"""The one audio loader: mono, resampled, float32, and clear errors naming the file.

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin.data.audio import AudioError, load_audio


def test_stereo_input_is_averaged_and_resampled(tmp_path):
    audio = tmp_path / "clip.wav"
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)], 1)
    sf.write(audio, 0.5 * stereo, 44100)
    wav = load_audio(str(audio))
    assert wav.shape == (16000,) and wav.dtype == torch.float32
    native = load_audio(str(audio), sample_rate=None)
    assert torch.allclose(native, torch.from_numpy(0.5 * stereo.mean(1)).float(), atol=1e-4)


def test_segments_and_files_at_the_expected_rate_are_read_as_they_are(tmp_path):
    sig = (0.3 * np.random.default_rng(0).standard_normal(1600)).astype(np.float32)
    sf.write(tmp_path / "a.wav", sig, 16000, subtype="FLOAT")
    assert torch.equal(load_audio(tmp_path / "a.wav"), torch.from_numpy(sig))
    part = load_audio({"file": str(tmp_path / "a.wav"), "start": 100, "stop": 600})
    assert torch.equal(part, torch.from_numpy(sig[100:600]))


def test_bad_audio_is_named(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioError, match="bad.wav.*unreadable or corrupt"):
        load_audio(str(bad))
    with pytest.raises(ValueError, match="gone.wav' not found"):  # AudioError is a ValueError
        load_audio(str(tmp_path / "gone.wav"))
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="empty.wav' is empty"):
        load_audio(str(tmp_path / "empty.wav"))
