"""Unit tests for fastast_plugin.data.crops: crop lengths, where crops lie, cropped reading.

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.crops import _crop_window, crop_length, cropped_audio_pipeline


# ----------------------------------------------------------------------
# Crops: random in training, fixed (start / centre) in evaluation
# ----------------------------------------------------------------------
def _ramp(path, num_samples):
    """A float WAV whose sample i is exactly i / 2**20: a read crop tells where it starts."""
    sf.write(str(path), np.arange(num_samples) / 2**20, 16000, subtype="FLOAT")
    return str(path)


def _start_of(sig):
    """Where a crop of a ``_ramp`` starts; checks that it is contiguous."""
    positions = np.rint(sig.numpy().astype(np.float64) * 2**20).astype(int)
    assert np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions)))
    return int(positions[0])


@pytest.mark.parametrize("frames", [1, 2, 98, 128, 1024])
def test_crop_length_gives_exactly_that_many_kaldi_frames(frames):
    from fastast_plugin.models.features import KaldiFbank, num_frames

    length = crop_length(frames)
    assert num_frames(length) == frames and num_frames(length - 1) == frames - 1
    fbank = KaldiFbank(target_length=None)
    assert fbank(torch.randn(1, length)).shape[1] == frames
    with pytest.raises(ValueError, match="crop frames must be an int >= 1"):
        crop_length(0)


def test_crop_window_rules():
    assert _crop_window(1000, 400, "start") == (0, 400)
    assert _crop_window(1000, 400, "centre") == (300, 700)
    assert _crop_window(1001, 400, "centre") == (300, 700)  # rounds down
    for mode in ("random", "start", "centre"):  # a short clip is kept whole
        assert _crop_window(300, 400, mode) == (0, 300)
        assert _crop_window(400, 400, mode) == (0, 400)
    generator = torch.Generator().manual_seed(0)
    starts = [_crop_window(1000, 400, "random", generator)[0] for _ in range(4000)]
    # every start that keeps the crop inside, none outside, about uniformly
    assert min(starts) == 0 and max(starts) == 600
    counts = np.bincount(starts, minlength=601)
    assert counts.max() < 25  # 601 starts, 6.7 per start on average
    with pytest.raises(ValueError, match="crop mode must be one of"):
        _crop_window(1000, 400, "middle")


def _crop_dataset(path, mode, length):
    return sb.dataio.dataset.DynamicItemDataset(
        {"u": {"wav": path}},
        dynamic_items=[cropped_audio_pipeline(16000, length, mode)],
        output_keys=["id", "sig"],
    )


def _epoch_starts(dataset, epochs, num_workers):
    loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=1, num_workers=num_workers)
    starts = []
    for _ in range(epochs):
        for batch in loader:
            sig = batch.sig.data[0]
            assert len(sig) == 4000
            starts.append(_start_of(sig))
    return starts


@pytest.mark.parametrize("num_workers", [0, 2])
def test_random_crops_differ_between_epochs_and_stay_inside_the_clip(tmp_path, num_workers):
    path = _ramp(tmp_path / "long.wav", 20000)
    torch.manual_seed(0)
    starts = _epoch_starts(_crop_dataset(path, "random", 4000), 8, num_workers)
    assert all(0 <= start <= 16000 for start in starts)  # crop inside the 20000 samples
    assert len(set(starts)) == 8  # a new crop in every epoch


@pytest.mark.parametrize("mode,start", [("start", 0), ("centre", 8000)])
def test_evaluation_crops_are_fixed(tmp_path, mode, start):
    path = _ramp(tmp_path / "long.wav", 20000)
    assert _epoch_starts(_crop_dataset(path, mode, 4000), 3, 0) == [start] * 3


def test_cropped_pipeline_reads_short_clips_whole(tmp_path):
    path = _ramp(tmp_path / "short.wav", 3000)
    for mode in ("random", "start", "centre"):
        sig = cropped_audio_pipeline(16000, 4000, mode)(path)
        assert len(sig) == 3000 and _start_of(sig) == 0 and sig.dtype == torch.float32
    with pytest.raises(ValueError, match="crop length must be an int >= 1"):
        cropped_audio_pipeline(16000, 0, "random")


def test_cropped_pipeline_resamples_and_mixes_other_files(tmp_path):
    """An 8 kHz stereo file gives the crop that the whole file, loaded at 16 kHz, has."""
    rng = np.random.default_rng(0)
    path = str(tmp_path / "stereo8k.wav")
    sf.write(path, rng.uniform(-0.5, 0.5, (8000, 2)), 8000, subtype="FLOAT")
    whole = load_audio(path, 16000)
    sig = cropped_audio_pipeline(16000, 4000, "start")(path)
    assert sig.shape == (4000,)
    # Resampling a crop differs from cropping the resampled file only near its end.
    torch.testing.assert_close(sig[:3900], whole[:3900], atol=1e-5, rtol=0)
