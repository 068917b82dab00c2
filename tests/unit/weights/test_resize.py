"""Flexible patch sizes (FlexiAST): the patch-size parser, PI-resize, token
counts, parity with the fixed-patch encoder, training through one kernel,
merging on top and the patch size sampler."""

import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.flexi import PatchSizeSampler
from fastast_plugin.models.merge import token_counts
from fastast_plugin.weights.resize import (
    _resize_matrices,
    parse_patch_size,
    patch_grid,
    pi_resize,
    resample_pos_embed,
)

# Patches of a 128 x 1024 input at non-overlapping p x p patches, FlexiAST's
# setting (Feng et al., 2023, arXiv:2307.09286): ((128 - p) // p + 1) *
# ((1024 - p) // p + 1).
TOKENS_128x1024 = {
    8: 2048,
    10: 1224,
    12: 850,
    15: 544,
    16: 512,
    20: 306,
    24: 210,
    30: 136,
    32: 128,
    40: 75,
    48: 42,
}


def flexi(depth=1, tdim=128, flexible="both", device="cpu", **kwargs):
    """A small FlexiAST-style encoder: base 16x16 kernel, stride 16."""
    torch.manual_seed(0)
    kwargs = {"embed_dim": 32, "num_heads": 2, "fstride": 16, "tstride": 16, **kwargs}
    return (
        ASTEncoder("tiny224", depth=depth, input_tdim=tdim, flexible=flexible, **kwargs)
        .to(device)
        .eval()
    )


def bilinear(x, size):
    """The resize operator PI-resize inverts: bilinear, no antialias."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------
# The patch-size parser
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, pair, single",
    [
        (16, (16, 16), 16),
        ("16", (16, 16), 16),
        (" 24 ", (24, 24), 24),
        ("16x12", (16, 12), (16, 12)),
        ("16X12", (16, 12), (16, 12)),
        ("16,12", (16, 12), (16, 12)),
        ((16, 12), (16, 12), (16, 12)),
        ([16, 12], (16, 12), (16, 12)),
    ],
)
def test_parse_patch_size_forms(value, pair, single):
    assert parse_patch_size(value) == pair
    assert parse_patch_size(value, as_pair=False) == single


@pytest.mark.parametrize(
    "value", [0, -4, True, 16.0, "16x", "16-48", "axb", "", (16,), (16, 12, 8), [16, 0], None]
)
def test_parse_patch_size_errors_name_the_argument(value):
    with pytest.raises(ValueError, match=r"--patch-sizes must be a positive int .*got"):
        parse_patch_size(value, "--patch-sizes")


def test_encoder_takes_every_spelling(device):
    enc = flexi(tdim=1024, flexible="time", device=device)
    enc.set_patch_size("48")  # one size: the flexible (time) axis only
    assert enc.patch_size == (16, 48)
    enc.set_patch_size("16x24")
    assert enc.patch_size == (16, 24) and enc.patch_stride == (16, 24)


# ----------------------------------------------------------------------
# PI-resize
# ----------------------------------------------------------------------
@pytest.mark.parametrize("new", [24, 32, (16, 40), (20, 16)])
def test_pi_resize_keeps_tokens_when_upsampling(new):
    torch.manual_seed(0)
    w = torch.randn(6, 1, 16, 16)
    x = torch.randn(50, 1, 16, 16)
    new = (new, new) if isinstance(new, int) else new
    w_new = pi_resize(w, new)
    before = torch.einsum("nchw,ochw->no", x, w)
    after = torch.einsum("nchw,ochw->no", bilinear(x, new), w_new)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("new", [8, 12, (16, 10)])
@pytest.mark.parametrize("mode, antialias", [("bilinear", False), ("bicubic", True)])
def test_pi_resize_is_least_squares_when_downsampling(new, mode, antialias):
    """Also checks the per-axis (Kronecker) computation against the full
    2-D resize operator, which is built here from 2-D basis patches."""
    torch.manual_seed(0)
    w = torch.randn(5, 1, 16, 16, dtype=torch.float64)
    new = (new, new) if isinstance(new, int) else new
    # B^T: row i = basis patch i resized by F.interpolate.
    basis = torch.eye(256, dtype=torch.float64).reshape(256, 1, 16, 16)
    resized = F.interpolate(basis, size=new, mode=mode, align_corners=False, antialias=antialias)
    bt = resized.reshape(256, -1)
    expected = torch.linalg.lstsq(bt, w.reshape(5, 256).T).solution.T
    got = pi_resize(w, new, interpolation=mode, antialias=antialias)
    torch.testing.assert_close(got.reshape(5, -1), expected)


def test_resize_matrices_cache_and_dtypes():
    p_f, p_t = _resize_matrices(16, 24)
    assert p_f.shape == (16, 24) and p_t is p_f  # one 1-D matrix per axis
    assert _resize_matrices((16, 16), [24, 24])[0] is p_f  # cached, any spelling
    assert _resize_matrices(16, 24, dtype=torch.float64)[0].dtype == torch.float64
    w = torch.randn(2, 1, 16, 16)
    assert pi_resize(w, 16) is w
    assert pi_resize(w.double(), 24).dtype == torch.float64
    assert pi_resize(w.bfloat16(), 24).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"new_size must be a positive int .* got 0"):
        pi_resize(w, 0)
    with pytest.raises(ValueError, match=r"kernel \[out, in, h, w\], got shape \(16, 16\)"):
        pi_resize(torch.zeros(16, 16), 8)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        _resize_matrices(16, 8, interpolation="cubic")


def test_resample_pos_embed_keeps_prefix_and_interpolates_with_antialias():
    pos = torch.randn(1, 2 + 8 * 64, 4)
    out = resample_pos_embed(pos, (8, 64), (5, 42), num_prefix_tokens=2)
    assert torch.equal(out[:, :2], pos[:, :2])
    grid = pos[:, 2:].transpose(1, 2).reshape(1, 4, 8, 64)
    expected = F.interpolate(grid, (5, 42), mode="bilinear", antialias=True)
    torch.testing.assert_close(out[:, 2:], expected.reshape(1, 4, -1).transpose(1, 2))
    assert torch.equal(resample_pos_embed(pos, (8, 64), (8, 64), 2), pos)


# ----------------------------------------------------------------------
# Token counts and the encoder's patch size
# ----------------------------------------------------------------------
def test_token_counts_match_flexiast_table(device):
    enc = flexi(tdim=1024, embed_dim=8, num_heads=1, device=device)
    feats = torch.randn(1, 1024, 128, device=device)
    for patch, patches in TOKENS_128x1024.items():
        enc.set_patch_size(patch)
        assert enc.num_tokens == patches + 2, patch
        with torch.no_grad():
            tokens = enc.forward_features(feats)
        assert tokens.shape[1] == patches + 2, patch
        assert enc.grid_size[0] * enc.grid_size[1] == patches


def test_time_only_and_freq_only_flexibility():
    enc = flexi(tdim=1024, flexible="time")
    enc.patch_size = 48
    assert enc.patch_size == (16, 48) and enc.patch_stride == (16, 48)
    assert enc.grid_size == (8, 21)
    with pytest.raises(ValueError, match=r"keeps the frequency patch_size at its base 16"):
        enc.set_patch_size((24, 24))
    enc = flexi(tdim=1024, flexible="freq")
    enc.set_patch_size(32)
    assert enc.patch_size == (32, 16) and enc.grid_size == (4, 64)


def test_patch_size_errors_name_the_value():
    with pytest.raises(ValueError, match="flexible='none'"):
        flexi(flexible="none").set_patch_size(24)
    with pytest.raises(ValueError, match="flexible must be one of"):
        flexi(flexible="yes")
    enc = flexi(tdim=64)
    with pytest.raises(ValueError, match="patch_size 48 does not fit an input of 32 mel"):
        ASTEncoder(
            "tiny224",
            depth=1,
            input_fdim=32,
            input_tdim=64,
            fstride=16,
            tstride=16,
            flexible="both",
        ).set_patch_size(48)
    too_long = r"patch_size \(16, 80\) does not fit an input of 64 frames"
    with pytest.raises(ValueError, match=too_long):
        enc.set_patch_size((16, 80))
    with pytest.raises(ValueError, match="patch_size must be a positive int"):
        enc.set_patch_size(-4)
    assert enc.patch_size == (16, 16)  # unchanged after the errors


# ----------------------------------------------------------------------
# Parity with the fixed-patch encoder
# ----------------------------------------------------------------------
@pytest.mark.parametrize("stride", [10, 16])
def test_base_patch_size_gives_exactly_the_fixed_logits(device, stride):
    torch.manual_seed(0)
    fixed = ASTClassifier(
        ASTEncoder("tiny224", depth=2, input_tdim=128, fstride=stride, tstride=stride),
        ASTHead(192, 5),
    ).eval()
    flexible = ASTClassifier(
        ASTEncoder(
            "tiny224", depth=2, input_tdim=128, fstride=stride, tstride=stride, flexible="both"
        ),
        ASTHead(192, 5),
    ).eval()
    flexible.load_state_dict(fixed.state_dict())  # same keys, same shapes
    fixed, flexible = fixed.to(device), flexible.to(device)
    feats = torch.randn(2, 128, 128, device=device)
    with torch.no_grad():
        reference = fixed(feats)
        assert torch.equal(flexible(feats), reference)
        flexible.encoder.set_patch_size(24)
        assert not torch.allclose(flexible(feats), reference)
        flexible.encoder.set_patch_size(None)  # back to base patch and strides
        assert torch.equal(flexible(feats), reference)
        flexible.encoder.set_patch_size(16, stride=stride)
        assert torch.equal(flexible(feats), reference)


def test_patch_grid_of_ast_inputs():
    assert patch_grid((128, 1024), 16, 10) == (12, 101)
    assert patch_grid((128, 1024), 48, 48) == (2, 21)
    assert patch_grid((128, 1024), (16, 24), (16, 24)) == (8, 42)


def test_embedding_at_another_size_is_resized_kernel_plus_resampled_grid(device):
    enc = flexi(tdim=256, device=device)
    enc.set_patch_size(24)
    feats = torch.randn(2, 256, 128, device=device)
    image = feats.transpose(1, 2).unsqueeze(1)
    w, b = enc.patch_embed.proj.weight, enc.patch_embed.proj.bias
    patches = F.conv2d(image, pi_resize(w, 24), b, stride=24).flatten(2).transpose(1, 2)
    pos = enc.pos_embed[:, 2:].transpose(1, 2).reshape(1, 32, 8, 16)
    pos = F.interpolate(pos, (5, 10), mode="bilinear", antialias=True)
    expected = patches + pos.flatten(2).transpose(1, 2)
    with torch.no_grad():
        tokens = enc.embed(feats)
    torch.testing.assert_close(tokens[:, 2:], expected, atol=1e-5, rtol=1e-5)
    cls = enc.cls_token + enc.pos_embed[:, :1]
    torch.testing.assert_close(tokens[:, :1], cls.expand(2, -1, -1))


# ----------------------------------------------------------------------
# Training: one kernel, every size, every parameter
# ----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Grad strides do not match bucket view strides")
def test_random_patch_sizes_train_the_one_kernel_under_ddp(tmp_path):
    """DDP (gloo, one process, find_unused_parameters=False) raises if a
    step leaves a parameter without gradient; every size must train the
    stored kernel."""
    torch.manual_seed(0)
    model = ASTClassifier(flexi(depth=2, tdim=96, r=2), ASTHead(32, 3))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        sampler = PatchSizeSampler([8, 12, 16, 24, 32, (16, 48)], seed=3)
        feats, labels = torch.randn(4, 96, 128), torch.tensor([0, 1, 2, 0])
        seen, kernels = set(), []
        for _ in range(12):
            size = sampler()
            seen.add(size)
            model.encoder.set_patch_size(size)
            opt.zero_grad()
            F.cross_entropy(ddp(feats), labels).backward()
            for name, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), (size, name)
            kernel = model.encoder.patch_embed.proj.weight
            assert kernel.shape == (32, 1, 16, 16) and kernel.grad.abs().sum() > 0, size
            kernels.append(kernel.detach().clone())
            opt.step()
    finally:
        dist.destroy_process_group()
    assert len(seen) >= 4
    assert not torch.equal(kernels[0], kernels[-1])


def test_sampler_is_seeded_weighted_and_resumable():
    a, b = PatchSizeSampler(seed=7), PatchSizeSampler(seed=7)
    draws = [a() for _ in range(50)]
    assert draws == [b() for _ in range(50)]  # same on every rank
    assert set(draws) <= set(PatchSizeSampler().sizes) and len(set(draws)) > 5
    only = PatchSizeSampler([8, 16, 32], weights=[0, 1, 0])
    assert {only() for _ in range(20)} == {16}
    state = a.state_dict()
    json.dumps(state)  # serialisable for the Checkpointer
    ahead = [a() for _ in range(5)]
    b.load_state_dict(state)
    assert [b() for _ in range(5)] == ahead
    with pytest.raises(ValueError, match="weights has 2 values for 3 sizes"):
        PatchSizeSampler([8, 16, 32], weights=[1, 1])
    with pytest.raises(ValueError, match="weights must be finite"):
        PatchSizeSampler([8, 16], weights=[0, 0])
    with pytest.raises(ValueError, match=r"sizes must be a positive int .* got \(16, 0\)"):
        PatchSizeSampler([(16, 0)])


def test_sampler_state_goes_through_the_checkpointer(tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    sampler = PatchSizeSampler(seed=1)
    checkpointer = Checkpointer(tmp_path, {"sampler": sampler})
    checkpointer.save_checkpoint()
    ahead = [sampler() for _ in range(5)]
    restored = PatchSizeSampler(seed=99)
    Checkpointer(tmp_path, {"sampler": restored}).recover_if_possible()
    assert [restored() for _ in range(5)] == ahead


# ----------------------------------------------------------------------
# Token merging on top of flexible patches
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, expected",
    [({"r": 8}, [44, 36, 28]), ({"keep_ratio": 0.5}, [27, 15, 9])],
)
def test_merging_follows_the_schedule_at_another_patch_size(
    device, block_token_counts, setting, expected
):
    enc = flexi(depth=3, tdim=256, device=device)
    enc.set_merge(**setting)
    enc.set_patch_size(24)  # grid 5 x 10: 50 patches + 2 prefix tokens
    assert enc.num_tokens == 52
    counts = block_token_counts(enc, torch.randn(1, 256, 128, device=device))
    assert counts == expected
    assert token_counts(52, enc.merge_schedule(), 2) == expected


def test_merged_token_map_at_another_patch_size(tmp_path):
    from fastast_plugin.evaluation import visualize

    enc = flexi(depth=2, tdim=128, r=6)
    enc.set_patch_size(32)
    groups = visualize._plot_token_groups(torch.randn(128, 128), enc, str(tmp_path / "g.png"))
    assert groups.shape == enc.grid_size == (4, 4)
    remaining = token_counts(enc.num_tokens, enc.merge_schedule(), 2)[-1]
    assert len(np.unique(groups)) == remaining - 2 == 5  # 18 -> 12 -> 7 tokens


def test_compiles_to_one_graph_at_a_fixed_patch_size(device):
    enc = flexi(depth=2, tdim=128, r=4, device=device)
    enc.set_patch_size(24)
    feats = torch.randn(2, 128, 128, device=device)
    compiled = torch.compile(enc, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(feats), enc(feats))
