"""ASTEncoder, ASTHead, ASTClassifier: structure, attention paths, token
merging inside the encoder (schedules, protection, tracing, training) and
configuration errors."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fastast_plugin.models.ast import MODEL_SIZES, ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.layers import MergeState
from fastast_plugin.models.merge import token_counts
from fastast_plugin.weights.resize import patch_grid

RECIPES = Path(__file__).parents[3] / "recipes"


def tiny(device, depth=2, **kwargs):
    """A seeded tiny224 encoder on 128 frames (146 tokens), in eval mode."""
    torch.manual_seed(0)
    kwargs.setdefault("input_tdim", 128)
    return ASTEncoder("tiny224", depth=depth, **kwargs).to(device).eval()


def feats_on(device, *shape):
    return torch.randn(*shape, device=device)


def tome_schedule(num_layers, r, inflection):
    """ToMe's (r, inflection) schedule as its tome/utils.py parse_r computes it."""
    first = int(r * (1.0 - inflection))
    step = (2 * r - 2 * first) / (num_layers - 1)
    return [int(first + step * i) for i in range(num_layers)]


# ----------------------------------------------------------------------
# Structure
# ----------------------------------------------------------------------
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
def test_grid_matches_ast_table(device, tdim, stride, grid):
    assert patch_grid((128, tdim), 16, stride) == grid
    enc = tiny(device, input_tdim=tdim, fstride=stride, tstride=stride)
    assert enc.grid_size == grid
    assert enc.pos_embed.shape[1] == grid[0] * grid[1] + 2


def test_encoder_embeds_patches_frequency_major(device):
    """Patch token f * t_dim + t must come from rows f*10.., columns t*10.."""
    enc = tiny(device)
    feats = torch.zeros(1, 128, 128, device=device)
    feats[0, 30:46, 20:36] = 1.0  # time 30..45, freq 20..35 -> patch (f=2, t=3)
    with torch.no_grad():
        tokens = enc.patch_embed(feats.transpose(1, 2).unsqueeze(1))[0]
        full_patch = enc.patch_embed.proj.weight.sum((1, 2, 3))
        full_patch = full_patch + enc.patch_embed.proj.bias
    t_dim = enc.grid_size[1]
    torch.testing.assert_close(tokens[2 * t_dim + 3], full_patch)
    assert not torch.allclose(tokens[3 * t_dim + 2], full_patch)


@pytest.mark.parametrize("depth, r", [(2, 0), (4, 16)], ids=["plain", "merged"])
def test_fused_and_eager_attention_agree(device, depth, r):
    """With r > 0 this also covers proportional attention (size bias)."""
    enc = tiny(device, depth=depth, r=r)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        fused = enc(feats)
        for block in enc.blocks:
            block.attn.fused_attn = False
        eager = enc(feats)
    torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-5)


def test_pooling_averages_cls_and_dist(device):
    enc = tiny(device)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        tokens = enc.forward_features(feats)
        assert torch.equal(enc(feats), (tokens[:, :1] + tokens[:, 1:2]) / 2)
        enc.pooling = "cls"
        assert torch.equal(enc(feats), tokens[:, :1])
        enc.pooling = "patch_mean"
        torch.testing.assert_close(enc(feats), tokens[:, 2:].mean(1, keepdim=True))


def test_patch_mean_pools_the_input_patches_whatever_merged(device):
    """Each merged token counts for the patches it holds: the pooled vector is
    the mean over the input patches of the token each patch ended in."""
    enc = tiny(device, depth=2, r=16, pooling="patch_mean", trace_source=True)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        tokens, state = enc.forward_tokens(feats)
        pooled = enc(feats)
    per_patch = state.source.transpose(1, 2) @ tokens  # [batch, inputs, dim]
    torch.testing.assert_close(pooled, per_patch[:, 2:].mean(1, keepdim=True))
    unweighted = tokens[:, 2:].mean(1, keepdim=True)
    assert (pooled - unweighted).abs().max() > 1e-3  # the sizes matter: the test can fail


def test_patch_mean_of_bf16_tokens_is_the_fp32_mean_rounded_once():
    """As merge_wavg, the weighted sum runs in fp32: under bf16 autocast the
    mean of 1,200 tokens is the fp32 mean rounded to bf16, not a bf16 sum."""
    enc = tiny("cpu", depth=1, pooling="patch_mean")
    generator = torch.Generator().manual_seed(0)
    tokens = (torch.randn(2, 2 + 1200, 192, generator=generator) + 3).to(torch.bfloat16)
    size = torch.randint(1, 5, (2, 2 + 1200, 1), generator=generator).float()
    state = MergeState(size=size)
    pooled = enc.pool(tokens, state)
    assert pooled.dtype == torch.bfloat16
    assert torch.equal(pooled, enc.pool(tokens.float(), state).to(torch.bfloat16))


def test_cls_only_model(device):
    enc = tiny(device, num_prefix_tokens=1)
    assert enc.dist_token is None and enc.pos_embed.shape[1] == 145
    assert enc.forward_features(feats_on(device, 1, 128, 128)).shape == (1, 145, 192)


def test_classifier_and_every_parameter_gets_gradient(device):
    model = ASTClassifier(tiny(device, drop_path=0.1), ASTHead(192, 5)).to(device).train()
    logits = model(feats_on(device, 3, 128, 128), torch.ones(3, device=device))
    assert logits.shape == (3, 5)
    logits.logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_classifier_labels_are_an_explicit_field():
    enc = tiny("cpu", depth=1)
    model = ASTClassifier(enc, ASTHead(192, 2), labels=("dog", "cat"))
    assert model.labels == ["dog", "cat"] and "labels" not in model.state_dict()
    assert ASTClassifier(enc, ASTHead(192, 2)).labels is None
    with pytest.raises(ValueError, match="labels has 3 names for a head of 2 classes"):
        ASTClassifier(enc, ASTHead(192, 2), labels=["a", "b", "c"])


def test_drop_path_is_identity_in_eval(device):
    enc = tiny(device, drop_path=0.5)
    plain = tiny(device)
    plain.load_state_dict(enc.state_dict())
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        assert torch.equal(enc.eval()(feats), plain.eval()(feats))
        enc.train()
        assert not torch.equal(enc(feats), plain(feats))


FLEXI_12 = {"embed_dim": 32, "num_heads": 2, "fstride": 16, "tstride": 16, "flexible": "both"}


@pytest.mark.parametrize(
    "depth, kwargs, patch_size",
    [(2, {}, None), (4, {"r": 16}, None), (2, FLEXI_12, 12)],
    ids=["plain", "merged", "patch12"],
)
def test_bf16_autocast_runs_close_to_fp32(device, depth, kwargs, patch_size):
    enc = tiny(device, depth=depth, **kwargs)
    if patch_size is not None:
        enc.set_patch_size(patch_size)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        ref = enc(feats)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            low = enc(feats)
    assert torch.isfinite(low).all()
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


@pytest.mark.parametrize("shape", [(2, 128, 100), (128, 128)], ids=["mel-bands", "2-d"])
def test_wrong_input_shape_is_named(device, shape):
    """Any number of frames is accepted (length_mode); the mel bands are not."""
    with pytest.raises(ValueError, match=r"\[batch, time, 128\].*got \(" + str(shape[0])):
        tiny(device)(feats_on(device, *shape))


# ----------------------------------------------------------------------
# Token merging inside the encoder
# ----------------------------------------------------------------------
def test_r_zero_is_bit_exact_after_merging_was_used(device):
    enc = tiny(device, depth=4)
    feats = feats_on(device, 2, 128, 128)
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
def test_tokens_per_block_follow_the_schedule(device, block_token_counts, setting, expected):
    enc = tiny(device, depth=4)
    enc.set_merge(**setting)
    counts = block_token_counts(enc, feats_on(device, 1, 128, 128))
    assert counts == expected
    assert token_counts(146, enc.merge_schedule(), 2) == expected


@pytest.mark.parametrize(
    "r, inflection",
    [([16, -1.0], -1.0), ((16, -1), -1.0), ([16, 0.5], 0.5), ([8, 1.0], 1.0)],
    ids=["yaml-decreasing", "tuple", "yaml-half", "increasing"],
)
def test_tome_schedule_through_the_encoder(device, block_token_counts, r, inflection):
    """ToMe's (r, inflection) form, also as a YAML list ending in a float:
    neither truncated to per-block ints ([16, 0, 0, ...]) nor rejected."""
    expected = tome_schedule(12, r[0], inflection)
    enc = tiny(device, depth=12, r=r)
    assert enc.r == r and enc.merge_schedule() == expected
    if inflection == -1.0:
        assert expected == [32, 29, 26, 23, 20, 17, 14, 11, 8, 5, 2, 0]
    counts = block_token_counts(enc, feats_on(device, 1, 128, 128))
    assert counts == token_counts(146, expected, 2)
    assert counts == sorted(counts, reverse=True) and counts[0] == 146 - expected[0]


def test_tome_schedule_from_a_recipe_yaml(tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    overrides = {
        "r": [16, -1.0],
        "n_classes": 35,  # the recipe counts the prepared labels; none here
        "init_from": "",  # random init: nothing to fetch
        "model_size": "tiny224",
        "data_folder": str(tmp_path / "data"),
        "output_folder": str(tmp_path / "out"),
    }
    with open(RECIPES / "SpeechCommands" / "hparams" / "tome_ast.yaml") as f:
        hparams = load_hyperpyyaml(f, overrides=overrides)
    enc = hparams["embedding_model"]
    assert enc.depth == 12 and enc.merge_schedule() == tome_schedule(12, 16, -1.0)


def test_huge_r_is_capped_and_keeps_prefix_tokens(device, block_token_counts):
    enc = tiny(device, depth=12, r=1000)
    counts = block_token_counts(enc, feats_on(device, 2, 128, 128))
    assert counts[-1] == 3 and min(counts) == 3


@pytest.mark.parametrize(
    "r, error",
    [
        (-1, ValueError),
        ([1, 2, 3, 4, 5], ValueError),
        ("x", (TypeError, ValueError)),
        ([16, 2.0], ValueError),  # an inflection outside [-1, 1]
        ([4.5, 2], TypeError),  # per-block values must be ints
    ],
)
def test_bad_r_is_rejected_with_its_value(r, error):
    enc = tiny("cpu", depth=4)
    with pytest.raises(error, match="r"):
        enc.r = r
    assert enc.r == 0  # the bad value was not stored


def test_source_tracing_covers_every_patch_once_and_protects_prefix(device):
    enc = tiny(device, depth=4, r=20, trace_source=True)
    feats = feats_on(device, 3, 128, 128)
    with torch.no_grad():
        tokens, state = enc.forward_tokens(feats)
    source, size = state.source, state.size
    ones = torch.ones(3, 146, device=device)
    assert source.shape == (3, tokens.shape[1], 146)
    assert torch.equal(source.sum(1), ones)  # one token per patch
    assert torch.equal(source.sum(-1, keepdim=True), size)
    cls, dist = torch.tensor([1.0, 0.0], device=device), torch.tensor([0.0, 1.0], device=device)
    assert torch.equal(source[:, 0, :2], cls.expand(3, 2))
    assert torch.equal(source[:, 1, :2], dist.expand(3, 2))
    assert torch.equal(size[:, :2], torch.ones(3, 2, 1, device=device))


def test_prop_attn_changes_the_output(device):
    enc = tiny(device, depth=4, r=16)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        with_prop = enc(feats)
        enc.prop_attn = False
        without = enc(feats)
    assert not torch.allclose(with_prop, without)


def test_training_with_merging_reduces_the_loss(device):
    torch.manual_seed(0)
    encoder = ASTEncoder("tiny224", depth=2, input_tdim=128, r=24, drop_path=0.1)
    model = ASTClassifier(encoder, ASTHead(192, 4)).to(device).train()
    feats = torch.randn(16, 128, 128)
    labels = torch.arange(16) % 4
    feats += labels[:, None, None].float()  # a learnable signal
    feats, labels = feats.to(device), labels.to(device)
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


def test_torch_compile_matches_eager(device):
    enc = tiny(device, depth=2, r=8)
    feats = feats_on(device, 2, 128, 128)
    compiled = torch.compile(enc)
    with torch.no_grad():
        torch.testing.assert_close(compiled(feats), enc(feats), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------
# Any-length input (length_mode) and padding masks
# ----------------------------------------------------------------------
def todays_forward(enc, feats):
    """The encoder's computation before length_mode existed (input_tdim frames)."""
    x = enc.patch_embed(feats.transpose(1, 2).unsqueeze(1))
    prefix = torch.cat([enc.cls_token, enc.dist_token], dim=1).expand(x.shape[0], -1, -1)
    x = torch.cat([prefix, x], dim=1) + enc.pos_embed
    state = MergeState()
    for block, r in zip(enc.blocks, enc.merge_schedule(x.shape[1])):
        x, state = block(x, state, r)
    return enc.pool(enc.norm(x))


def tokens_entering_first_block(enc, feats, lengths=None):
    seen = []
    hook = enc.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    with torch.no_grad():
        enc(feats, lengths)
    hook.remove()
    return [shape[1] for shape in seen], [shape[0] for shape in seen]


@pytest.mark.parametrize("r", [0, 16], ids=["plain", "merged"])
def test_pad_and_native_at_input_tdim_are_todays_output_exactly(device, r):
    enc = tiny(device, depth=2, r=r)
    feats = feats_on(device, 2, 128, 128)
    with torch.no_grad():
        today = todays_forward(enc, feats)
        assert torch.equal(enc(feats), today)
        enc.length_mode = "native"
        assert torch.equal(enc(feats), today)


def test_pad_mode_pads_and_crops_like_ast(device):
    enc = tiny(device)
    short, long = feats_on(device, 2, 100, 128), feats_on(device, 2, 150, 128)
    with torch.no_grad():
        padded = torch.nn.functional.pad(short, (0, 0, 0, 28))
        assert torch.equal(enc(short), enc(padded))
        assert torch.equal(enc(long), enc(long[:, :128]))
        lengths = torch.tensor([0.5, 1.0], device=device)
        assert torch.equal(enc(short, lengths), enc(short))  # AST attends over padding


def test_speechbrain_batch_length_runs_in_pad_mode(device):
    """A SpeechBrain pipeline hands features of its batch's own length
    (431 frames here) to a 512-frame model: padded, no error."""
    enc = tiny(device, depth=1, input_tdim=512, embed_dim=32, num_heads=2)
    feats = feats_on(device, 2, 431, 128)
    lengths = torch.tensor([1.0, 0.7], device=device)
    with torch.no_grad():
        emb = enc(feats, lengths)
        padded = torch.nn.functional.pad(feats, (0, 0, 0, 81))
        assert emb.shape == (2, 1, 32) and torch.equal(emb, enc(padded))


@pytest.mark.parametrize("patch_size", [None, 32], ids=["fixed", "flexi32"])
def test_native_patches_sit_where_padding_puts_them(device, flexi_encoder, patch_size):
    """Native tokens of a short clip are the padded clip's tokens of its own
    columns: the positional grid is cut, left-aligned (the current,
    resampled grid for a flexible encoder)."""
    enc = tiny(device) if patch_size is None else flexi_encoder().to(device)
    if patch_size is not None:
        enc.set_patch_size(patch_size)
    clip = feats_on(device, 1, 70, 128)
    padded = torch.nn.functional.pad(clip, (0, 0, 0, 128 - 70))
    f_dim, t_dim = enc.grid_size
    columns = enc._time_columns(70)
    with torch.no_grad():
        native = enc.embed(clip)
        full = enc.embed(padded)
    keep = [p + 2 for p in range(f_dim * t_dim) if p % t_dim < columns]
    assert native.shape[1] == 2 + f_dim * columns
    torch.testing.assert_close(native, full[:, [0, 1] + keep], rtol=0, atol=1e-6)


def test_native_cost_follows_the_clip_length(device):
    """1 s (100 frames) through a 10 s (1024-frame) model: ~10x fewer tokens."""
    torch.manual_seed(0)
    enc = ASTEncoder("tiny224", depth=1, input_tdim=1024, embed_dim=32, num_heads=2)
    enc = enc.to(device).eval()
    padded, _ = tokens_entering_first_block(enc, feats_on(device, 1, 100, 128))
    enc.length_mode = "native"
    native, _ = tokens_entering_first_block(enc, feats_on(device, 1, 100, 128))
    assert padded == [2 + 12 * 101] and native == [2 + 12 * 9]
    assert enc.grid_for(100) == (12, 9)
    assert padded[0] / native[0] > 10


def test_native_length_limits_are_named(device):
    enc = tiny(device, length_mode="native")
    with pytest.raises(ValueError, match="at most input_tdim=128 frames"):
        enc(feats_on(device, 1, 129, 128))
    short = feats_on(device, 1, 15, 128)
    with pytest.raises(ValueError, match="at least 16 frames"):
        enc(short)
    enc.length_mode = "pad"  # padded to input_tdim before any check
    torch.testing.assert_close(enc(short), enc(F.pad(short, (0, 0, 0, 128 - 15))))
    enc.length_mode = "native"
    with pytest.raises(ValueError, match="clip 1 .* at least 16 frames"):
        enc(feats_on(device, 2, 128, 128), torch.tensor([1.0, 0.1], device=device))


def test_bad_length_mode_is_rejected_and_not_stored():
    with pytest.raises(ValueError, match="length_mode must be one of"):
        ASTEncoder("tiny224", depth=1, input_tdim=128, length_mode="crop")
    enc = tiny("cpu", depth=1, length_mode="native")
    with pytest.raises(ValueError, match=r"\['pad', 'native'\], got 'Native'"):
        enc.length_mode = "Native"
    assert enc.length_mode == "native"


def test_config_rebuilds_the_length_mode():
    enc = tiny("cpu", depth=1)
    assert enc.init_kwargs()["length_mode"] == "pad"
    enc.length_mode = "native"
    twin = ASTEncoder(**enc.init_kwargs())
    assert twin.length_mode == "native" and twin.init_kwargs() == enc.init_kwargs()


# Clip lengths in frames: 12, 6, 9 and 3 patch columns at stride 10.
CLIP_FRAMES = [128, 70, 100, 40]


def padded_batch(device, frames=CLIP_FRAMES, fdim=128):
    """Clips and the same clips in one batch, padded with noise (not zeros:
    padding must take no part at all), and their relative lengths."""
    generator = torch.Generator().manual_seed(1)
    clips = [torch.randn(1, n, fdim, generator=generator).to(device) for n in frames]
    batch = torch.randn(len(frames), max(frames), fdim, generator=generator).to(device)
    for row, clip in zip(batch, clips):
        row[: clip.shape[1]] = clip[0]
    lengths = torch.tensor(frames, device=device) / max(frames)
    return clips, batch, lengths


MERGES = [{"r": 0}, {"r": 8}, {"keep_ratio": 0.85}]


@pytest.mark.parametrize("pooling", ["prefix_mean", "patch_mean"])
@pytest.mark.parametrize("merge", MERGES, ids=["r0", "r8", "keep0.85"])
def test_a_clip_embeds_the_same_alone_and_padded_in_a_batch(device, merge, pooling):
    enc = tiny(device, depth=4, length_mode="native", pooling=pooling)
    enc.set_merge(**merge)
    clips, batch, lengths = padded_batch(device)
    with torch.no_grad():
        together = enc(batch, lengths)
        alone = torch.cat([enc(clip) for clip in clips])
        unmasked = enc(batch)  # padding attended (and merged) as real frames
    assert (together - alone).abs().max() <= 1e-4
    assert (unmasked[1:] - alone[1:]).abs().max() > 1e-2  # the test can fail


@pytest.mark.parametrize("merge", MERGES, ids=["r0", "r8", "keep0.85"])
def test_masking_with_a_flexible_encoder_at_another_patch_size(device, flexi_encoder, merge):
    enc = flexi_encoder(depth=3, length_mode="native").to(device)
    enc.set_patch_size(24)  # 5 x 5 grid at 128 frames, 24-frame columns
    enc.set_merge(**merge)
    clips, batch, lengths = padded_batch(device, frames=[128, 50, 90, 24])
    with torch.no_grad():
        together = enc(batch, lengths)
        alone = torch.cat([enc(clip) for clip in clips])
    assert (together - alone).abs().max() <= 1e-4


@pytest.mark.parametrize("merge", MERGES, ids=["r0", "r8", "keep0.85"])
def test_masked_tokens_are_each_clips_own_tokens(device, merge):
    """forward_tokens with lengths: row i holds clip i's tokens alone (same
    order, sizes and sources), then zeros; ``valid`` marks them."""
    enc = tiny(device, depth=3, length_mode="native", trace_source=True)
    enc.set_merge(**merge)
    clips, batch, lengths = padded_batch(device)
    with torch.no_grad():
        tokens, state = enc.forward_tokens(batch, lengths)
        for i, clip in enumerate(clips):
            own, own_state = enc.forward_tokens(clip)
            n = own.shape[1]
            assert state.valid[i].sum() == n and state.valid[i, :n].all()
            torch.testing.assert_close(tokens[i, :n], own[0], rtol=0, atol=1e-4)
            assert torch.equal(tokens[i, n:], torch.zeros_like(tokens[i, n:]))
            if own_state.size is not None:
                assert torch.equal(state.size[i, :n], own_state.size[0])
                width = own_state.source.shape[-1]
                assert torch.equal(state.source[i, :n, :width], own_state.source[0])
    assert torch.isfinite(tokens).all()


@pytest.mark.parametrize("merge", [{"r": 0}, {"r": 8}], ids=["one-masked-pass", "by-length"])
def test_masking_runs_as_documented(device, merge):
    """No merging: one pass cut to the longest clip; merging: one pass per
    distinct clip length, each at its own token count."""
    enc = tiny(device, depth=2, length_mode="native")
    enc.set_merge(**merge)
    _, batch, lengths = padded_batch(device, frames=[100, 70, 100, 40])
    counts, rows = tokens_entering_first_block(enc, batch, lengths)
    if merge["r"] == 0:
        assert counts == [2 + 12 * 9] and rows == [4]
    else:
        assert counts == [2 + 12 * 3, 2 + 12 * 6, 2 + 12 * 9] and rows == [1, 1, 2]


@pytest.mark.parametrize("mode", ["pad", "native"])
@pytest.mark.parametrize("r", [0, 8], ids=["plain", "merged"])
def test_lengths_none_or_all_one_is_the_plain_path(device, mode, r):
    enc = tiny(device, depth=2, r=r, length_mode=mode)
    feats = feats_on(device, 3, 128, 128)
    with torch.no_grad():
        plain = enc(feats)
        assert torch.equal(enc(feats, None), plain)
        assert torch.equal(enc(feats, torch.ones(3, device=device)), plain)
        tokens, state = enc.forward_tokens(feats, torch.ones(3, device=device))
    assert state.valid is None and torch.equal(enc.pool(tokens), plain)


def test_equal_short_lengths_crop_to_the_clip(device):
    """Every clip 0.5 of the batch: the batch is cropped, no mask needed."""
    enc = tiny(device, depth=2, r=8, length_mode="native")
    clips, batch, _ = padded_batch(device, frames=[64, 64, 128])
    lengths = torch.full((2,), 0.5, device=device)
    with torch.no_grad():
        tokens, state = enc.forward_tokens(batch[:2], lengths)
        alone = torch.cat([enc(clip) for clip in clips[:2]])
    assert state.valid is None and tokens.shape[1] == 2 + 12 * 5 - 16
    assert (enc.pool(tokens) - alone).abs().max() <= 1e-4


def test_masked_training_step_gets_finite_gradients(device):
    torch.manual_seed(0)
    model = ASTClassifier(tiny(device, depth=2, r=8, length_mode="native"), ASTHead(192, 3))
    model = model.to(device).train()
    _, batch, lengths = padded_batch(device)
    for merge in ({"r": 8}, {"r": 0}):
        model.encoder.set_merge(**merge)
        model.zero_grad()
        model(batch, lengths).logsumexp(-1).sum().backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_torch_compile_in_pad_mode_with_lengths(device):
    """A SpeechBrain Brain passes lengths; in pad mode they keep the compiled path."""
    enc = tiny(device, depth=1, r=8)
    feats = feats_on(device, 2, 128, 128)
    lengths = torch.tensor([1.0, 0.6], device=device)
    compiled = torch.compile(enc)
    with torch.no_grad():
        torch.testing.assert_close(compiled(feats, lengths), enc(feats), rtol=1e-4, atol=1e-5)
