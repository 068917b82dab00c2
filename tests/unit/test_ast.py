"""ASTEncoder structure, attention paths and configuration errors."""

import pytest
import torch

from fastast_plugin.ast import (
    MODEL_SIZES,
    ASTClassifier,
    ASTEncoder,
    ASTHead,
    grid_shape,
)


def tiny(**kwargs):
    kwargs.setdefault("depth", 2)
    kwargs.setdefault("input_tdim", 128)
    return ASTEncoder("tiny224", **kwargs)


@pytest.mark.parametrize("size", sorted(MODEL_SIZES))
def test_presets_build_the_deit_shapes(size):
    dim, depth, heads = MODEL_SIZES[size]
    enc = ASTEncoder(size, input_tdim=128)
    assert enc.embed_dim == dim and enc.depth == depth
    assert enc.blocks[0].attn.num_heads == heads
    assert enc.blocks[0].attn.qkv.weight.shape == (3 * dim, dim)
    assert enc.pos_embed.shape == (1, 146, dim)


@pytest.mark.parametrize(
    "tdim, stride, grid", [(1024, 10, (12, 101)), (512, 10, (12, 50)), (1024, 16, (8, 64))]
)
def test_grid_matches_ast_table(tdim, stride, grid):
    assert grid_shape(128, tdim, 16, stride, stride) == grid
    enc = tiny(input_tdim=tdim, fstride=stride, tstride=stride)
    assert enc.grid_size == grid
    assert enc.pos_embed.shape[1] == grid[0] * grid[1] + 2


def test_token_order_is_frequency_major():
    """Patch token f * t_dim + t must come from rows f*10.., columns t*10.."""
    enc = tiny().eval()
    feats = torch.zeros(1, 128, 128)
    feats[0, 30:46, 20:36] = 1.0  # time 30..45, freq 20..35 -> patch (f=2, t=3)
    with torch.no_grad():
        tokens = enc.patch_embed(feats.transpose(1, 2).unsqueeze(1))[0]
        full_patch = enc.patch_embed.proj.weight.sum((1, 2, 3))
        full_patch = full_patch + enc.patch_embed.proj.bias
    t_dim = enc.grid_size[1]
    torch.testing.assert_close(tokens[2 * t_dim + 3], full_patch)
    assert not torch.allclose(tokens[3 * t_dim + 2], full_patch)


def test_fused_and_eager_attention_agree():
    torch.manual_seed(0)
    enc = tiny().eval()
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        fused = enc(feats)
        for block in enc.blocks:
            block.attn.fused_attn = False
        eager = enc(feats)
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-5)


def test_pooling_averages_cls_and_dist():
    enc = tiny().eval()
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        tokens = enc.forward_features(feats)
        assert torch.equal(enc(feats), (tokens[:, :1] + tokens[:, 1:2]) / 2)
        enc.pooling = "cls"
        assert torch.equal(enc(feats), tokens[:, :1])


def test_cls_only_model():
    enc = tiny(num_prefix_tokens=1).eval()
    assert enc.dist_token is None and enc.pos_embed.shape[1] == 145
    assert enc.forward_features(torch.randn(1, 128, 128)).shape == (1, 145, 192)


def test_classifier_and_every_parameter_gets_gradient():
    model = ASTClassifier(tiny(drop_path=0.1), ASTHead(192, 5)).train()
    logits = model(torch.randn(3, 128, 128), torch.ones(3))
    assert logits.shape == (3, 5)
    logits.logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_drop_path_is_identity_in_eval():
    torch.manual_seed(0)
    enc = tiny(drop_path=0.5)
    plain = tiny()
    plain.load_state_dict(enc.state_dict())
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        assert torch.equal(enc.eval()(feats), plain.eval()(feats))
        enc.train()
        assert not torch.equal(enc(feats), plain(feats))


def test_bf16_autocast_runs_close_to_fp32():
    torch.manual_seed(0)
    enc = tiny().eval()
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        ref = enc(feats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(feats)
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_size": "huge"}, "model_size"),
        ({"num_prefix_tokens": 3}, "num_prefix_tokens"),
        ({"pooling": "max"}, "pooling"),
        ({"embed_dim": 100, "num_heads": 3}, "divisible"),
        ({"input_tdim": 8}, "does not fit"),
    ],
)
def test_bad_config_is_named(kwargs, message):
    kwargs = {"model_size": "tiny224", "depth": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        ASTEncoder(**kwargs)


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match=r"\[batch, 128, 128\]"):
        tiny()(torch.randn(2, 100, 128))
