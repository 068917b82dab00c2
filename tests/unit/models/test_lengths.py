"""Unit tests for fastast_plugin.models.lengths: frames, padding masks, runs per length.

Authors
 * fastast developers 2026
"""

import pytest
import torch

from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.models.layers import MergeState
from fastast_plugin.models.lengths import (
    check_frames,
    clip_frames,
    frames_for_columns,
    padding_mask,
    real_tokens_first,
    scatter_runs,
    time_columns,
)


@pytest.mark.parametrize("patch,stride", [(16, 10), (16, 16), (24, 24), (48, 16)])
def test_frames_for_columns_is_the_fewest_that_fill_them(patch, stride):
    for columns in range(1, 30):
        frames = frames_for_columns(columns, patch, stride)
        assert time_columns(frames, patch, stride) == columns
        assert time_columns(frames - 1, patch, stride) == columns - 1


def test_clip_frames_rounds_as_speechbrain_and_names_a_short_clip():
    feats = torch.zeros(3, 100, 8)
    # SpeechBrain's relative -> absolute rule: round(length * frames)
    assert clip_frames(feats, torch.tensor([0.256, 1.0, 0.5]), 16) == [26, 100, 50]
    with pytest.raises(ValueError, match="clip 1 of the batch has 10 frames"):
        clip_frames(feats, torch.tensor([1.0, 0.1, 1.0]), 16)
    with pytest.raises(ValueError, match=r"lengths must be \[batch\] = \[3\]"):
        clip_frames(feats, torch.ones(2), 16)


def test_native_frames_are_bounded_by_a_patch_and_the_grid():
    check_frames(16, "native", 16, 128)
    with pytest.raises(ValueError, match="shorter than one patch"):
        check_frames(15, "native", 16, 128)
    with pytest.raises(ValueError, match="longer than this model's positional grid"):
        check_frames(129, "native", 16, 128)


def test_padding_mask_is_frequency_major_like_the_patch_tokens():
    """Token ``prefix + f * columns + t`` is real when column ``t`` is within the clip."""
    valid = padding_mask([2, 3], f_dim=2, num_prefix_tokens=2)
    assert valid.int().tolist() == [[1, 1, 1, 1, 0, 1, 1, 0], [1] * 8]


def test_real_tokens_first_keeps_their_order_and_zeroes_padding():
    tokens = torch.arange(1.0, 7.0).view(1, 6, 1).repeat(2, 1, 2)
    valid = torch.tensor([[1, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out, order_valid = real_tokens_first(tokens, valid)
    assert out[0, :, 0].tolist() == [1.0, 3.0, 5.0, 6.0, 0.0, 0.0]
    assert torch.equal(out[1], tokens[1])
    assert order_valid.sum(1).tolist() == [4, 6] and order_valid[0, :4].all()


def test_scatter_runs_fills_in_what_a_run_did_not_track():
    """A run that merged nothing gets sizes of one and an identity source."""
    merged = MergeState(
        size=torch.tensor([[[1.0], [3.0]]]), source=torch.tensor([[[1.0, 0, 0, 0], [0, 1, 1, 1]]])
    )
    runs = [
        (torch.tensor([2]), torch.full((1, 2, 4), 2.0), merged),
        (torch.tensor([0, 1]), torch.ones(2, 3, 4), MergeState()),
    ]
    tokens, state = scatter_runs(runs, 3)
    assert tokens.shape == (3, 3, 4) and tokens[2, 2].eq(0).all() and tokens[2, :2].eq(2).all()
    assert state.valid.sum(1).tolist() == [3, 3, 2]
    assert state.size[:, :, 0].tolist() == [[1, 1, 1], [1, 1, 1], [1, 3, 0]]
    assert torch.equal(state.source[0, :, :3], torch.eye(3)) and state.source.shape == (3, 3, 4)
    assert torch.equal(state.source[2, :2], merged.source[0])


def test_the_encoder_sets_its_constants_on_the_blocks():
    """num_protected, prop_attn and trace_source live on the blocks, set by the encoder."""
    enc = ASTEncoder("tiny224", input_tdim=128, depth=2, num_prefix_tokens=1, prop_attn=False)
    assert [(b.num_protected, b.prop_attn, b.trace_source) for b in enc.blocks] == [
        (1, False, False)
    ] * 2
    enc.prop_attn, enc.trace_source = True, True
    assert all(b.prop_attn and b.trace_source for b in enc.blocks)
    assert (enc.init_kwargs()["prop_attn"], enc.init_kwargs()["trace_source"]) == (True, True)
    enc.r = 8
    with torch.no_grad():
        _, state = enc.forward_tokens(torch.randn(1, 128, 128))
    assert state.source is not None  # the blocks traced, as the encoder said
