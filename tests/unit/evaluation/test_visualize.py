"""Merged-token pictures: group maps agree with the encoder's merge state."""

import numpy as np
import soundfile as sf
import torch

from fastast_plugin.evaluation import visualize
from fastast_plugin.models.ast import ASTEncoder


def test_groups_match_remaining_tokens(tmp_path, device):
    torch.manual_seed(0)
    enc = ASTEncoder("tiny224", depth=3, input_tdim=128, r=30).to(device)
    feats = torch.randn(128, 128).to(device)
    groups = visualize._plot_token_groups(feats, enc, str(tmp_path / "g.png"))
    with torch.no_grad():
        tokens = enc.eval().forward_features(feats[None])
    assert groups.shape == enc.grid_size
    assert len(np.unique(groups)) == tokens.shape[1] - 2
    assert (tmp_path / "g.png").stat().st_size > 0
    assert enc.trace_source is False  # restored


def test_unmerged_model_has_one_group_per_patch(tmp_path, device):
    enc = ASTEncoder("tiny224", depth=1, input_tdim=128).to(device)
    feats = torch.randn(128, 128).to(device)
    groups = visualize._plot_token_groups(feats, enc, str(tmp_path / "g.png"))
    assert np.array_equal(np.sort(groups.ravel()), np.arange(144))


def test_cli_draws_a_stereo_clip_at_another_rate(tmp_path):
    audio = tmp_path / "clip.wav"
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)], 1)
    sf.write(audio, 0.5 * stereo, 44100)  # read by fastast_plugin.data.audio.load_audio
    out = tmp_path / "x.png"
    groups = visualize.main([str(audio), "--r", "8", "--out", str(out), "--model-size", "tiny224"])
    assert out.stat().st_size > 0
    assert groups.shape == (12, 9)  # 1 s at 16 kHz: 98 frames
