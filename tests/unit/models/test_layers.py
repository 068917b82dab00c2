"""Transformer layers: patch embedding, attention, merging block, timm's Mlp/DropPath."""

import pytest
import torch
import torch.nn.functional as F

from fastast_plugin.models.layers import Attention, Block, MergeState, PatchEmbed
from fastast_plugin.weights.resize import patch_grid


def test_patch_tokens_are_frequency_major(device):
    """Patch token f * t_dim + t must come from rows f*10.., columns t*10.."""
    torch.manual_seed(0)
    embed = PatchEmbed(192).to(device)
    image = torch.zeros(1, 1, 128, 128, device=device)
    image[0, 0, 20:36, 30:46] = 1.0  # freq 20..35, time 30..45 -> patch (f=2, t=3)
    with torch.no_grad():
        tokens = embed(image)[0]
        full_patch = embed.proj.weight.sum((1, 2, 3)) + embed.proj.bias
    t_dim = patch_grid((128, 128), 16, 10)[1]
    torch.testing.assert_close(tokens[2 * t_dim + 3], full_patch)
    assert not torch.allclose(tokens[3 * t_dim + 2], full_patch)


def test_patch_embed_at_another_size_uses_the_resized_kernel(device):
    from fastast_plugin.weights.resize import pi_resize

    torch.manual_seed(0)
    embed = PatchEmbed(8, 16, 16, 16).to(device)
    embed.set_patch_size((24, 12), (24, 12))
    image = torch.randn(2, 1, 128, 96, device=device)
    kernel = pi_resize(embed.proj.weight, (24, 12))
    expected = F.conv2d(image, kernel, embed.proj.bias, stride=(24, 12))
    with torch.no_grad():
        torch.testing.assert_close(embed(image), expected.flatten(2).transpose(1, 2))
    assert embed.stride == (24, 12) and embed.base_patch_size == (16, 16)


@pytest.mark.parametrize("with_size", [False, True], ids=["plain", "prop_attn"])
def test_fused_and_explicit_attention_agree(device, with_size):
    torch.manual_seed(0)
    attn = Attention(64, num_heads=4).to(device).eval()
    x = torch.randn(2, 10, 64, device=device)
    size = torch.randint(1, 5, (2, 10, 1), device=device).float() if with_size else None
    with torch.no_grad():
        fused, metric = attn(x, size)
        attn.fused_attn = False
        explicit, metric2 = attn(x, size)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert torch.equal(metric, metric2) and metric.shape == (2, 10, 16)


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match=r"embed_dim \(100\) must be divisible by num_heads \(3\)"):
        Attention(100, 3)


def test_block_keeps_timm_parameter_names():
    names = set(Block(8, 2).state_dict())
    expected = {
        f"{layer}.{p}"
        for layer in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
        for p in ("weight", "bias")
    }
    assert names == expected


def test_timm_mlp_computes_fc2_gelu_fc1(device):
    """timm's Mlp with its defaults is the plain two-layer GELU MLP."""
    torch.manual_seed(0)
    mlp = Block(16, 2, mlp_ratio=4.0).to(device).mlp
    x = torch.randn(3, 5, 16, device=device)
    expected = mlp.fc2(F.gelu(mlp.fc1(x)))
    with torch.no_grad():
        assert torch.equal(mlp(x), expected)
    assert mlp.fc1.out_features == 64


def test_timm_drop_path_is_per_sample_and_rescaled(device):
    """Stochastic depth (Huang et al., 2016): a sample's branch is kept with
    probability 1 - p and then divided by 1 - p; identity in eval."""
    drop = Block(4, 1, drop_path=0.25).to(device).drop_path
    x = torch.randn(64, 3, 4, device=device)
    torch.manual_seed(0)
    out = drop.train()(x)
    torch.manual_seed(0)
    keep = x.new_empty(64, 1, 1).bernoulli_(0.75)
    torch.testing.assert_close(out, x * keep / 0.75)
    assert torch.equal(drop.eval()(x), x)


def test_block_merges_r_tokens_and_tracks_sizes(device):
    torch.manual_seed(0)
    block = Block(64, 4, num_protected=2, trace_source=True).to(device).eval()
    x = torch.randn(2, 12, 64, device=device)
    with torch.no_grad():
        out, state = block(x, r=3)
        plain, untouched = block(x)
    assert out.shape == (2, 9, 64) and state.size.shape == (2, 9, 1)
    assert state.source.shape == (2, 9, 12)
    assert torch.equal(state.size.sum(1), torch.full((2, 1), 12.0, device=device))
    assert plain.shape == x.shape and untouched == MergeState()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("with_size", [False, True], ids=["plain", "prop_attn"])
def test_padding_keys_take_no_part_in_attention(device, fused, with_size):
    """Real tokens attend as if the padding were not there, whatever it holds."""
    torch.manual_seed(0)
    attn = Attention(64, num_heads=4, fused_attn=fused).to(device).eval()
    x = torch.randn(2, 10, 64, device=device)
    size = torch.randint(1, 5, (2, 10, 1), device=device).float() if with_size else None
    valid = torch.arange(10, device=device) < torch.tensor([[6], [10]], device=device)
    noisy = torch.where(valid.unsqueeze(-1), x, 100 * torch.randn_like(x))
    with torch.no_grad():
        masked, _ = attn(noisy, size, valid)
        alone, _ = attn(x[:1, :6], None if size is None else size[:1, :6])
        full, _ = attn(x[1:], None if size is None else size[1:])
    torch.testing.assert_close(masked[0, :6], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(masked[1], full[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(masked).all()


def test_block_carries_the_mask_and_refuses_to_merge_with_it(device):
    torch.manual_seed(0)
    block = Block(16, 2).to(device).eval()
    x = torch.randn(2, 8, 16, device=device)
    state = MergeState(valid=torch.ones(2, 8, dtype=torch.bool, device=device))
    with torch.no_grad():
        out, after = block(x, state)
        # An all-real mask is a zero bias (another kernel on CUDA, so close, not equal).
        torch.testing.assert_close(out, block(x)[0], rtol=1e-6, atol=1e-6)
        assert after.valid is state.valid
        with pytest.raises(ValueError, match="cannot merge tokens .* padding mask"):
            block(x, state, r=2)
