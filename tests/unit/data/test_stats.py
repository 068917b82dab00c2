"""``fastast stats``: the fbank mean/std of a dataset, against torchaudio computed clip by clip.

Authors
 * fastast developers 2026
"""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from fastast_plugin import cli


def ast_fbank(wav):
    """AST's loader: clip mean removed, Kaldi fbank with AST's arguments, no padding."""
    wav = torch.as_tensor(wav, dtype=torch.float32)[None]
    return torchaudio.compliance.kaldi.fbank(
        wav - wav.mean(),
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )


@pytest.fixture
def dataset(tmp_path):
    """Clips of 0.3 s to 1.5 s (speech-like bursts and noise) and their manifest."""
    rng = np.random.default_rng(0)
    clips = {}
    for i, seconds in enumerate((0.3, 0.75, 1.5)):
        n = int(16000 * seconds)
        wav = rng.normal(0, 0.05 * (i + 1), n) * np.sin(np.linspace(0, 20 * (i + 1), n))
        sf.write(str(tmp_path / f"c{i}.wav"), wav, 16000, subtype="FLOAT")
        clips[f"c{i}"] = sf.read(str(tmp_path / f"c{i}.wav"), dtype="float32")[0]
    manifest = {k: {"wav": f"{{data_root}}/{k}.wav", "label": "x"} for k in clips}
    (tmp_path / "train.json").write_text(json.dumps(manifest))
    return tmp_path, clips


def stats_command(argv, capsys):
    assert cli.main(["stats", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {key: float(value) for key, value in (line.split(": ") for line in lines)}


def test_stats_equal_the_pooled_fbank_of_every_clip_without_padding(dataset, capsys):
    folder, clips = dataset
    direct = torch.cat([ast_fbank(wav) for wav in clips.values()]).double()
    manifest = stats_command([str(folder / "train.json"), "--data-root", str(folder)], capsys)
    assert set(manifest) == {"fbank_mean", "fbank_std"}
    assert manifest["fbank_mean"] == pytest.approx(direct.mean().item(), abs=1e-5)
    assert manifest["fbank_std"] == pytest.approx(direct.std(unbiased=False).item(), abs=1e-5)
    assert stats_command([str(folder)], capsys) == manifest  # a folder of the same clips


def test_target_length_leaves_out_the_cropped_frames(dataset, capsys):
    folder, clips = dataset
    direct = torch.cat([ast_fbank(wav)[:50] for wav in clips.values()]).double()
    got = stats_command([str(folder), "--target-length", "50"], capsys)
    assert got["fbank_mean"] == pytest.approx(direct.mean().item(), abs=1e-5)
    assert got["fbank_std"] == pytest.approx(direct.std(unbiased=False).item(), abs=1e-5)
