"""Token merging inside ASTEncoder: schedules, protection, tracing, training."""

import pytest
import torch

from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.merge import token_counts


def tiny(depth=4, **kwargs):
    torch.manual_seed(0)
    return ASTEncoder("tiny224", depth=depth, input_tdim=128, **kwargs).eval()


def block_token_counts(encoder, feats):
    counts = []
    hooks = [
        block.register_forward_hook(lambda m, i, out: counts.append(out[0].shape[1]))
        for block in encoder.blocks
    ]
    with torch.no_grad():
        encoder(feats)
    for hook in hooks:
        hook.remove()
    return counts


def test_r_zero_is_bit_exact_after_merging_was_used():
    enc = tiny()
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        plain = enc(feats)
        enc.r = 16
        merged = enc(feats)
        enc.r = 0
        again = enc(feats)
    assert torch.equal(plain, again)
    assert not torch.allclose(plain, merged)


@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"r": 16}, [130, 114, 98, 82]),
        ({"r": [32, 0, 8, 100]}, [114, 114, 106, 54]),
        ({"keep_ratio": 0.5}, [74, 38, 20, 11]),
    ],
)
def test_tokens_per_block_follow_the_schedule(setting, expected):
    enc = tiny()
    enc.set_merge(**setting)
    counts = block_token_counts(enc, torch.randn(1, 128, 128))
    assert counts == expected
    assert token_counts(146, enc.merge_schedule(), 2) == expected


def test_huge_r_is_capped_and_keeps_prefix_tokens():
    enc = tiny(depth=12, r=1000)
    counts = block_token_counts(enc, torch.randn(2, 128, 128))
    assert counts[-1] == 3 and min(counts) == 3


@pytest.mark.parametrize(
    "r, error", [(-1, ValueError), ([1, 2, 3, 4, 5], ValueError), ("x", (TypeError, ValueError))]
)
def test_bad_r_is_rejected_with_its_value(r, error):
    enc = tiny()
    with pytest.raises(error, match="r"):
        enc.r = r
    assert enc.r == 0  # the bad value was not stored


def test_source_tracing_covers_every_patch_once_and_protects_prefix():
    enc = tiny(r=20, trace_source=True)
    feats = torch.randn(3, 128, 128)
    with torch.no_grad():
        tokens, state = enc.forward_tokens(feats)
    source, size = state.source, state.size
    assert source.shape == (3, tokens.shape[1], 146)
    assert torch.equal(source.sum(1), torch.ones(3, 146))  # one token per patch
    assert torch.equal(source.sum(-1, keepdim=True), size)
    assert torch.equal(source[:, 0, :2], torch.tensor([1.0, 0.0]).expand(3, 2))
    assert torch.equal(source[:, 1, :2], torch.tensor([0.0, 1.0]).expand(3, 2))
    assert torch.equal(size[:, :2], torch.ones(3, 2, 1))


def test_proportional_attention_fused_matches_eager():
    enc = tiny(r=16)
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        fused = enc(feats)
        for block in enc.blocks:
            block.attn.fused_attn = False
        eager = enc(feats)
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-5)


def test_prop_attn_changes_the_output():
    enc = tiny(r=16)
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        with_prop = enc(feats)
        enc.prop_attn = False
        without = enc(feats)
    assert not torch.allclose(with_prop, without)


def test_training_with_merging_reduces_the_loss():
    torch.manual_seed(0)
    encoder = ASTEncoder("tiny224", depth=2, input_tdim=128, r=24, drop_path=0.1)
    model = ASTClassifier(encoder, ASTHead(192, 4)).train()
    feats = torch.randn(16, 128, 128)
    labels = torch.arange(16) % 4
    feats += labels[:, None, None].float()  # a learnable signal
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(feats), labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_bf16_autocast_with_merging():
    enc = tiny(r=16)
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        ref = enc(feats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(feats)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_torch_compile_matches_eager():
    enc = tiny(depth=2, r=8)
    feats = torch.randn(2, 128, 128)
    compiled = torch.compile(enc)
    with torch.no_grad():
        torch.testing.assert_close(compiled(feats), enc(feats), rtol=1e-4, atol=1e-5)
