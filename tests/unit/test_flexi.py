"""Flexible patch sizes (FlexiAST): PI-resize, token counts, parity with the
fixed-patch encoder, training through one kernel, merging on top, the patch
size sampler and the evaluation across patch sizes."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
import torch.nn.functional as F

from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.flexi import (
    PatchSizeSampler,
    pi_resize,
    resample_pos_embed,
    resize_matrices,
)
from fastast_plugin.merge import token_counts

# FlexiAST's token table for a 128 x 1024 input (reference note, section 4.2).
TOKENS_128x1024 = {
    8: 2048, 10: 1224, 12: 850, 15: 544, 16: 512, 20: 306,
    24: 210, 30: 136, 32: 128, 40: 75, 48: 42,
}


def flexi(depth=1, tdim=128, flexible="both", **kwargs):
    """A small FlexiAST-style encoder: base 16x16 kernel, stride 16."""
    torch.manual_seed(0)
    kwargs = {"embed_dim": 32, "num_heads": 2, "fstride": 16, "tstride": 16, **kwargs}
    return ASTEncoder(
        "tiny224", depth=depth, input_tdim=tdim, flexible=flexible, **kwargs
    ).eval()


def bilinear(x, size):
    """The resize operator PI-resize inverts: bilinear, no antialias."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


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
    resized = F.interpolate(
        basis, size=new, mode=mode, align_corners=False, antialias=antialias
    )
    bt = resized.reshape(256, -1)
    expected = torch.linalg.lstsq(bt, w.reshape(5, 256).T).solution.T
    got = pi_resize(w, new, interpolation=mode, antialias=antialias)
    torch.testing.assert_close(got.reshape(5, -1), expected)


def test_resize_matrices_cache_and_dtypes():
    p_f, p_t = resize_matrices(16, 24)
    assert p_f.shape == (16, 24) and p_t is p_f  # one 1-D matrix per axis
    assert resize_matrices((16, 16), [24, 24])[0] is p_f  # cached, any spelling
    assert resize_matrices(16, 24, dtype=torch.float64)[0].dtype == torch.float64
    w = torch.randn(2, 1, 16, 16)
    assert pi_resize(w, 16) is w
    assert pi_resize(w.double(), 24).dtype == torch.float64
    assert pi_resize(w.bfloat16(), 24).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"new_size must be a positive int .* got 0"):
        pi_resize(w, 0)
    with pytest.raises(ValueError, match=r"kernel \[out, in, h, w\], got shape \(16, 16\)"):
        pi_resize(torch.zeros(16, 16), 8)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        resize_matrices(16, 8, interpolation="cubic")


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
def test_token_counts_match_flexiast_table():
    enc = flexi(tdim=1024, embed_dim=8, num_heads=1)
    feats = torch.randn(1, 1024, 128)
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
        ASTEncoder("tiny224", depth=1, input_fdim=32, input_tdim=64, fstride=16,
                   tstride=16, flexible="both").set_patch_size(48)
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
def test_base_patch_size_gives_exactly_the_fixed_logits(stride):
    torch.manual_seed(0)
    fixed = ASTClassifier(
        ASTEncoder("tiny224", depth=2, input_tdim=128, fstride=stride, tstride=stride),
        ASTHead(192, 5),
    ).eval()
    flexible = ASTClassifier(
        ASTEncoder("tiny224", depth=2, input_tdim=128, fstride=stride, tstride=stride,
                   flexible="both"),
        ASTHead(192, 5),
    ).eval()
    flexible.load_state_dict(fixed.state_dict())  # same keys, same shapes
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        reference = fixed(feats)
        assert torch.equal(flexible(feats), reference)
        flexible.encoder.set_patch_size(24)
        assert not torch.allclose(flexible(feats), reference)
        flexible.encoder.set_patch_size(None)  # back to base patch and strides
        assert torch.equal(flexible(feats), reference)
        flexible.encoder.set_patch_size(16, stride=stride)
        assert torch.equal(flexible(feats), reference)


def test_embedding_at_another_size_is_resized_kernel_plus_resampled_grid():
    enc = flexi(tdim=256)
    enc.set_patch_size(24)
    feats = torch.randn(2, 256, 128)
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
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1
    )
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
def test_merging_follows_the_schedule_at_another_patch_size(setting, expected):
    enc = flexi(depth=3, tdim=256)
    enc.set_merge(**setting)
    enc.set_patch_size(24)  # grid 5 x 10: 50 patches + 2 prefix tokens
    assert enc.num_tokens == 52
    counts = block_token_counts(enc, torch.randn(1, 256, 128))
    assert counts == expected
    assert token_counts(52, enc.merge_schedule(), 2) == expected


def test_merged_token_map_at_another_patch_size(tmp_path):
    from fastast_plugin import visualize

    enc = flexi(depth=2, tdim=128, r=6)
    enc.set_patch_size(32)
    groups = visualize.plot_token_groups(torch.randn(128, 128), enc, str(tmp_path / "g.png"))
    assert groups.shape == enc.grid_size == (4, 4)
    remaining = token_counts(enc.num_tokens, enc.merge_schedule(), 2)[-1]
    assert len(np.unique(groups)) == remaining - 2 == 5  # 18 -> 12 -> 7 tokens


def test_compiles_to_one_graph_at_a_fixed_patch_size():
    enc = flexi(depth=2, tdim=128, r=4)
    enc.set_patch_size(24)
    feats = torch.randn(2, 128, 128)
    compiled = torch.compile(enc, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(feats), enc(feats))


def test_bf16_autocast_at_another_patch_size():
    enc = flexi(depth=2, tdim=128)
    enc.set_patch_size(12)
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        ref = enc(feats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(feats)
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


# ----------------------------------------------------------------------
# Evaluation across patch sizes
# ----------------------------------------------------------------------
def test_flexi_eval_writes_csv_markdown_and_plot(tmp_path):
    from fastast_plugin import flexi_eval

    rng = np.random.default_rng(0)
    labels = ["hum", "hiss"]
    manifest = {}
    for i in range(5):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, rng.standard_normal(8000 if i % 2 else 12000) * 0.1, 16000)
        manifest[f"clip{i}"] = {"wav": "{data_root}/" + path.name, "label": labels[i % 2]}
    (tmp_path / "test.json").write_text(json.dumps(manifest))
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    model = ASTClassifier(flexi(depth=1, tdim=64, embed_dim=64, num_heads=1), ASTHead(64, 2))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    out = tmp_path / "out"
    argv = [
        "--checkpoint", str(tmp_path / "model.pth"), "--manifest", str(tmp_path / "test.json"),
        "--labels", str(tmp_path / "labels.json"), "--data-root", str(tmp_path),
        "--out", str(out), "--patch-sizes", "16", "32", "16x8", "--batch-size", "2",
    ]
    rows = flexi_eval.main(argv)
    with open(out / "flexi_eval.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["patch_size"] for r in table] == ["16", "32", "16x8"]
    assert [int(r["tokens"]) for r in table] == [2 + 8 * 4, 2 + 4 * 2, 2 + 8 * 8]
    assert all(r["clips"] == "5" and 0 <= float(r["acc"]) <= 1 for r in table)
    assert all(float(r["clips_per_s"]) > 0 and float(r["gflops_per_clip"]) > 0 for r in table)
    assert rows[0]["acc"] == float(table[0]["acc"])
    md = (out / "flexi_eval.md").read_text().splitlines()
    assert md[0].startswith("| patch_size |") and len(md) == 5
    assert (out / "flexi_eval.png").stat().st_size > 0

    manifest["clip0"]["wav"] = str(tmp_path / "missing.wav")
    (tmp_path / "test.json").write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="clip 'clip0' not found at .*missing.wav"):
        flexi_eval.main(argv)


def test_benchmark_product_table():
    from fastast_plugin.flexi_eval import benchmark_patch_sizes, product_table

    model = ASTClassifier(flexi(depth=2, tdim=128), ASTHead(32, 2)).eval()
    rows = benchmark_patch_sizes(model, torch.randn(2, 128, 128), [16, 32], [0, 4], runs=1)
    assert [(r["patch_size"], r["r"]) for r in rows] == [
        ("16", 0), ("16", 4), ("32", 0), ("32", 4)
    ]
    assert [r["tokens_last_block"] for r in rows] == [66, 58, 18, 10]
    assert rows[1]["gflops_per_clip"] < rows[0]["gflops_per_clip"]
    assert rows[3]["gflops_per_clip"] < rows[2]["gflops_per_clip"]
    table = product_table(rows).splitlines()
    assert table[0] == "| patch \\ r | 0 | 4 |" and len(table) == 4
    assert model.encoder.patch_size == (16, 16) and model.encoder.r == 0  # restored
