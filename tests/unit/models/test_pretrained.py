"""from_pretrained: Hugging Face and original AST parity, pos-embed adaptation
at load time, ImageNet initialisation, FlexiAST checkpoints, new heads and
labels, override and strict-load errors."""

import json
import logging
import shutil

import pytest
import torch
import torch.nn.functional as F

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.weights.fit import adapt_pos_embed, read_checkpoint
from fastast_plugin.weights.state_dict import CheckpointMismatchError


# ----------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------
def hf_logits(model, x):
    """Logits of a Hugging Face model, run on ``x``'s device."""
    with torch.no_grad():
        return model.to(x.device)(x).logits


def our_logits(model, x):
    """Logits of one of our models, run on ``x``'s device."""
    with torch.no_grad():
        return model.to(x.device)(x)


def original_from_encoder(enc, n_classes=527):
    """Original AST layout from one of our encoders plus a random head."""
    sd = {"module.v." + k: v for k, v in enc.state_dict().items()}
    head = ASTHead(enc.embed_dim, n_classes)
    for p in ("weight", "bias"):
        sd["module.mlp_head.0." + p] = torch.randn_like(getattr(head.norm, p))
        sd["module.mlp_head.1." + p] = getattr(head.linear, p).detach()
    sd["module.v.head.weight"] = torch.randn(1000, enc.embed_dim)
    sd["module.v.head.bias"] = torch.randn(1000)
    return sd


@pytest.fixture(scope="module")
def audioset_file(tmp_path_factory):
    """An AudioSet-shaped original checkpoint: embed 768, 12x101 grid, depth 1."""
    torch.manual_seed(0)
    enc = ASTEncoder("base384", depth=1, input_tdim=1024)
    path = tmp_path_factory.mktemp("as") / "audioset_10_10_0.4593.pth"
    sd = original_from_encoder(enc)
    torch.save(sd, path)
    return path, sd


# ----------------------------------------------------------------------
# Hugging Face parity
# ----------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["safetensors", "hub_bin", "memory_bin", "eager"])
def test_hf_folder_matches_transformers(tmp_path, layout, hf_ast, device):
    hf = hf_ast.model(attn="eager" if layout == "eager" else "sdpa")
    hub = hf_ast.save(hf, tmp_path / "saved")
    folder = tmp_path / "saved"
    if layout.endswith("_bin"):  # older transformers wrote pytorch_model.bin
        folder = tmp_path / "bin"
        folder.mkdir()
        shutil.copy(tmp_path / "saved" / "config.json", folder)
        tensors = hub if layout == "hub_bin" else hf.state_dict()
        torch.save(tensors, folder / "pytorch_model.bin")
    model = from_pretrained(folder)
    x = torch.randn(3, 128, 128, device=device)
    assert (our_logits(model, x) - hf_logits(hf, x)).abs().max() <= 1e-4
    assert model.labels == [f"LABEL_{i}" for i in range(5)]
    assert model.encoder.norm.eps == model.head.norm.eps == 1e-12


def test_hf_labels_and_input_tdim_override(tmp_path, hf_ast, pos_grid):
    labels = {"id2label": {0: "dog", 1: "cat"}, "label2id": {"dog": 0, "cat": 1}}
    hf = hf_ast.model(num_labels=2, **labels)
    hf_ast.save(hf, tmp_path)
    # The weights file itself works too: config.json is read beside it.
    model = from_pretrained(tmp_path / "model.safetensors", input_tdim=256)
    assert model.labels == ["dog", "cat"]
    assert model.encoder.grid_size == (12, 25)
    pos = hf.audio_spectrogram_transformer.embeddings.position_embeddings.detach()
    expected = F.interpolate(pos_grid(pos, (12, 12)), size=(12, 25), mode="bilinear")
    assert torch.allclose(pos_grid(model.encoder.pos_embed, (12, 25)), expected)


# ----------------------------------------------------------------------
# Original AST layout parity
# ----------------------------------------------------------------------
@pytest.mark.parametrize("stride", [10, 12])
def test_original_layout_matches_transformers(tmp_path, stride, hf_ast, device):
    # Original AST uses timm's LN eps 1e-6 in the blocks and torch's 1e-5 in
    # mlp_head; give the HF model the same so the comparison is exact.
    hf = hf_ast.model(layer_norm_eps=1e-6, frequency_stride=stride, time_stride=stride)
    hf.classifier.layernorm.eps = 1e-5
    hub = hf_ast.save(hf, tmp_path / "hf")
    path = tmp_path / f"speechcommands_{stride}_{stride}_0.9812.pth"
    torch.save(hf_ast.to_original(hub, depth=2), path)

    # Shapes give the head count only for 64-dim heads (DeiT): 64 // 64 = 1
    # here, so the 4 heads of this small model are an override.
    model = from_pretrained(path, input_tdim=128, num_heads=4)
    x = torch.randn(3, 128, 128, device=device)
    assert (our_logits(model, x) - hf_logits(hf, x)).abs().max() <= 1e-4
    assert model.labels is None

    # Without input_tdim: a length with the same grid (128 for both
    # strides, the first multiple of 16 that gives it); same logits.
    model = from_pretrained(path, num_heads=4)
    assert model.encoder.input_tdim == 128
    x_cut = x[:, : model.encoder.input_tdim]
    assert (our_logits(model, x_cut) - hf_logits(hf, x)).abs().max() <= 1e-4


def test_original_strides_from_file_name_or_overrides(tmp_path, hf_ast):
    hf = hf_ast.model(frequency_stride=12, time_stride=12)
    sd = hf_ast.to_original(hf_ast.save(hf, tmp_path / "hf"), depth=2)
    named = tmp_path / "audioset_12_12_0.4467.pth"
    torch.save(sd, named)
    with pytest.raises(ValueError, match=r"fstride/tstride 12/12, got 10/10"):
        from_pretrained(named, fstride=10, tstride=10)
    unnamed = tmp_path / "ast_model.pth"
    torch.save(sd, unnamed)
    with pytest.raises(ValueError, match=r"100 patches, not a multiple of f_dim=12"):
        from_pretrained(unnamed)  # default 10/10 does not fit a 10x10 grid
    model = from_pretrained(unnamed, fstride=12, tstride=12, input_tdim=128)
    assert model.encoder.grid_size == (10, 10)


def test_fastast_layout_round_trip(tmp_path, device):
    torch.manual_seed(0)
    enc = ASTEncoder("tiny224", depth=2, input_tdim=128)
    model = ASTClassifier(enc, ASTHead(192, 7)).eval()
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    loaded = from_pretrained(path, input_tdim=128, r=4, fused_attn=False)
    x = torch.randn(2, 128, 128, device=device)
    assert loaded.encoder.r == 4 and not loaded.encoder.blocks[0].attn.fused_attn
    loaded.encoder.r = 0
    assert torch.allclose(our_logits(loaded, x), our_logits(model, x), atol=1e-5)


# ----------------------------------------------------------------------
# AudioSet-shaped checkpoint and pos-embed adaptation
# ----------------------------------------------------------------------
def test_audioset_checkpoint_keeps_its_grid(audioset_file):
    path, sd = audioset_file
    model = from_pretrained(path, input_tdim=1024)
    assert model.encoder.grid_size == (12, 101)
    assert torch.equal(model.encoder.pos_embed, sd["module.v.pos_embed"])
    assert model.head.linear.weight.shape == (527, 768)
    assert torch.equal(model.head.norm.weight, sd["module.mlp_head.0.weight"])
    assert read_checkpoint(path).arch["input_tdim"] == 1024  # AST's AudioSet length


@pytest.mark.parametrize("tdim, start", [(128, 44), (512, 25)])
def test_audioset_pos_embed_centre_cut(audioset_file, tdim, start, pos_grid):
    path, sd = audioset_file
    model = from_pretrained(path, input_tdim=tdim)
    f, t = model.encoder.grid_size
    source = pos_grid(sd["module.v.pos_embed"], (12, 101))
    cut = source[..., start : start + t]
    assert torch.equal(pos_grid(model.encoder.pos_embed, (f, t)), cut)
    assert torch.equal(model.encoder.pos_embed[:, :2], sd["module.v.pos_embed"][:, :2])


def test_audioset_pos_embed_interpolated_when_longer(audioset_file, pos_grid):
    path, sd = audioset_file
    model = from_pretrained(path, input_tdim=2048)
    source = pos_grid(sd["module.v.pos_embed"], (12, 101))
    assert model.encoder.grid_size == (12, 204)
    expected = F.interpolate(source, size=(12, 204), mode="bilinear")
    assert torch.allclose(pos_grid(model.encoder.pos_embed, (12, 204)), expected)


# ----------------------------------------------------------------------
# ImageNet (timm DeiT/ViT) initialisation
# ----------------------------------------------------------------------
def test_deit_init_sums_rgb_and_cuts_centre(deit_file, pos_grid):
    path, sd = deit_file
    model = from_pretrained(path, input_tdim=128, n_classes=10)
    enc = model.encoder
    assert enc.depth == 1 and enc.embed_dim == 192 and enc.blocks[0].attn.num_heads == 3
    kernel = sd["patch_embed.proj.weight"].sum(dim=1, keepdim=True)
    assert torch.equal(enc.patch_embed.proj.weight, kernel)
    assert torch.equal(enc.blocks[0].attn.qkv.weight, sd["blocks.0.attn.qkv.weight"])
    source = pos_grid(sd["pos_embed"], (24, 24))
    assert torch.equal(pos_grid(enc.pos_embed, (12, 12)), source[:, :, 6:18, 6:18])
    assert torch.equal(enc.pos_embed[:, :2], sd["pos_embed"][:, :2])
    assert model.head.linear.weight.shape == (10, 192) and model.labels is None


def test_deit_init_interpolates_time_for_1024_frames(deit_file, pos_grid):
    path, sd = deit_file
    model = from_pretrained(path)  # AST defaults: 1024 frames, 10/10, 527 classes
    assert model.encoder.grid_size == (12, 101)
    assert model.head.linear.weight.shape == (527, 192)
    source = pos_grid(sd["pos_embed"], (24, 24))
    expected = F.interpolate(source, size=(24, 101), mode="bilinear")[:, :, 6:18]
    assert torch.allclose(pos_grid(model.encoder.pos_embed, (12, 101)), expected)


# ----------------------------------------------------------------------
# The n_classes override
# ----------------------------------------------------------------------
def test_n_classes_gives_new_head_and_keeps_encoder(tmp_path, caplog, hf_ast):
    hf = hf_ast.model()
    hf_ast.save(hf, tmp_path)
    trained = from_pretrained(tmp_path)
    assert from_pretrained(tmp_path, n_classes=5).head.linear.weight.equal(
        trained.head.linear.weight
    )  # same size: the trained head is kept
    with caplog.at_level(logging.INFO):
        model = from_pretrained(tmp_path, n_classes=3)
    assert "new random head with 3 classes" in caplog.text
    assert model.head.linear.weight.shape == (3, 64) and model.labels is None
    for name, value in trained.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], value), name


# ----------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------
def tiny_original(tmp_path, mutate):
    enc = ASTEncoder("tiny224", depth=1, input_tdim=128)
    sd = original_from_encoder(enc, n_classes=4)
    mutate(sd)
    path = tmp_path / "speechcommands_10_10_0.9812.pth"
    torch.save(sd, path)
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda sd: sd.pop("module.v.blocks.0.norm2.bias"),
            r"missing keys: encoder\.blocks\.0\.norm2\.bias",
        ),
        (
            lambda sd: sd.update({"module.v.blocks.0.attn.extra": torch.zeros(1)}),
            r"unexpected keys: encoder\.blocks\.0\.attn\.extra",
        ),
        (
            lambda sd: sd.update({"module.v.norm.weight": torch.zeros(100)}),
            r"shape mismatches: encoder\.norm\.weight: "
            r"checkpoint \(100,\) vs model \(192,\)",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_strict_load_names_the_problem(tmp_path, mutate, message):
    path = tiny_original(tmp_path, mutate)
    with pytest.raises(CheckpointMismatchError, match=message) as err:
        from_pretrained(path)
    assert str(path) in str(err.value)
    with pytest.raises(CheckpointMismatchError, match=message.replace("encoder\\.", "")):
        ASTEncoder("tiny224", depth=1, input_tdim=128, init_from=str(path))


def test_unknown_format_and_overrides(tmp_path, audioset_file):
    path = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="Cannot tell the checkpoint format"):
        from_pretrained(path)
    with pytest.raises(TypeError, match=r"unknown override\(s\) \['colour'\]"):
        from_pretrained(audioset_file[0], colour="red")
    with pytest.raises(TypeError, match="init_from"):
        from_pretrained(audioset_file[0], init_from="x.pth")


def test_hf_strides_cannot_change(tmp_path, hf_ast):
    hf_ast.save(hf_ast.model(), tmp_path)
    with pytest.raises(ValueError, match=r"10/10, got 12/12"):
        from_pretrained(tmp_path, fstride=12, tstride=12)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["frequency_stride"] == 10


def test_num_heads_needed_when_heads_are_not_64_wide(tmp_path):
    enc = ASTEncoder("tiny224", embed_dim=96, num_heads=2, depth=1, input_tdim=128)
    path = tmp_path / "enc.pth"
    torch.save(enc.state_dict(), path)
    with pytest.raises(ValueError, match="cannot infer num_heads for embed_dim 96"):
        from_pretrained(path, n_classes=2)
    model = from_pretrained(path, n_classes=2, num_heads=2)
    assert model.encoder.blocks[0].attn.num_heads == 2


# ----------------------------------------------------------------------
# FlexiAST checkpoints and flexible initialisation
# ----------------------------------------------------------------------
def flexiast_layout(enc, head):
    """FlexiAST's DataParallel state dict (the layout of its ``FlexiASTModel``,
    Feng et al., 2023, arXiv:2307.09286), written from one of our encoders:
    stored kernel and grid at the top, backbone under v.*, with v's own
    unused patch/pos embeddings and ImageNet head."""
    dim = enc.embed_dim
    sd = {
        "module.patch_embed.proj.weight": enc.patch_embed.proj.weight,
        "module.patch_embed.proj.bias": enc.patch_embed.proj.bias,
        "module.pos_embed.pos_embed": enc.pos_embed,
        "module.v.patch_embed.proj.weight": torch.randn(dim, 1, 8, 8),
        "module.v.patch_embed.proj.bias": torch.randn(dim),
        "module.v.pos_embed": torch.randn(1, 1 + 16 * 32, dim),
        "module.v.head.weight": torch.randn(1000, dim),
        "module.v.head.bias": torch.randn(1000),
        "module.mlp_head.0.weight": head.norm.weight,
        "module.mlp_head.0.bias": head.norm.bias,
        "module.mlp_head.1.weight": head.linear.weight,
        "module.mlp_head.1.bias": head.linear.bias,
    }
    for key, value in enc.state_dict().items():
        if not key.startswith(("patch_embed.", "pos_embed")):
            sd["module.v." + key] = value
    return {k: v.detach().clone() for k, v in sd.items()}


@pytest.mark.parametrize("prefix", [1, 2], ids=["vit224", "deit384-origin"])
def test_flexiast_checkpoint_loads_strictly_and_runs_at_any_size(tmp_path, prefix, device):
    torch.manual_seed(0)
    enc = ASTEncoder(
        "tiny224",
        depth=2,
        input_tdim=256,
        fstride=16,
        tstride=16,
        num_prefix_tokens=prefix,
        flexible="both",
    )
    reference = ASTClassifier(enc, ASTHead(192, 4)).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    sd = flexiast_layout(enc, reference.head)
    assert sd["module.pos_embed.pos_embed"].shape == (1, prefix + 8 * 16, 192)
    path = tmp_path / "flexiast.pth"
    torch.save(sd, path)

    ckpt = read_checkpoint(path)
    assert ckpt.family == "flexiast" and ckpt.grid == (8, 16) and ckpt.strides == (16, 16)
    model = from_pretrained(path)
    assert model.encoder.flexible == "both" and model.encoder.input_tdim == 256
    assert model.encoder.num_prefix_tokens == prefix
    x = torch.randn(2, 256, 128, device=device)
    for size in (16, 24, 8, (16, 32)):
        model.encoder.set_patch_size(size)
        reference.encoder.set_patch_size(size)
        assert torch.equal(our_logits(model, x), our_logits(reference, x)), size
    at_24 = from_pretrained(path, patch_size=24, flexible="time")
    assert at_24.encoder.patch_size == (16, 24) and at_24.encoder.grid_size == (8, 10)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda sd: sd.pop("module.v.blocks.0.norm2.bias"),
            r"missing keys: encoder\.blocks\.0\.norm2\.bias",
        ),
        (
            lambda sd: sd.update({"module.extra.weight": torch.zeros(1)}),
            r"unexpected keys: encoder\.extra\.weight",
        ),
        (
            lambda sd: sd.update({"module.pos_embed.pos_embed": torch.zeros(1, 100, 192)}),
            r"99 patches, not a multiple of f_dim=8",
        ),
    ],
    ids=["missing", "unexpected", "grid"],
)
def test_flexiast_mismatches_are_named(tmp_path, mutate, message):
    enc = ASTEncoder(
        "tiny224", depth=1, input_tdim=128, fstride=16, tstride=16, num_prefix_tokens=1
    )
    sd = flexiast_layout(enc, ASTHead(192, 3))
    mutate(sd)
    path = tmp_path / "flexiast.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=message) as err:
        from_pretrained(path)
    assert str(path) in str(err.value)


def test_fixed_patch_teacher_initialises_a_flexible_student(tmp_path):
    """FlexiAST's init: a p=8 stride-8 AST teacher -> 16x16 base kernel
    (PI-resized) and the teacher's 16x16 grid resampled to the 8x8 base grid."""
    from fastast_plugin.weights.resize import pi_resize, resample_pos_embed

    torch.manual_seed(0)
    teacher = ASTEncoder("tiny224", depth=1, input_tdim=128, patch_size=8, fstride=8, tstride=8)
    path = tmp_path / "teacher_p8.pth"  # no strides in the name: 8/8 is inferred
    torch.save(original_from_encoder(teacher, n_classes=3), path)
    student = ASTEncoder(
        "tiny224",
        depth=1,
        input_tdim=128,
        fstride=16,
        tstride=16,
        flexible="both",
        init_from=str(path),
    )
    kernel = pi_resize(teacher.patch_embed.proj.weight.detach(), 16)
    assert torch.equal(student.patch_embed.proj.weight, kernel)
    pos = resample_pos_embed(teacher.pos_embed.detach(), (16, 16), (8, 8), 2)
    assert torch.equal(student.pos_embed, pos)
    assert torch.equal(student.blocks[0].mlp.fc1.weight, teacher.blocks[0].mlp.fc1.weight)

    model = from_pretrained(path, base_patch_size=16, fstride=16, tstride=16)
    assert model.encoder.flexible == "both" and model.encoder.grid_size == (8, 8)
    assert torch.equal(model.encoder.patch_embed.proj.weight, kernel)
    assert model.head.linear.weight.shape == (3, 192)  # the teacher's head

    with pytest.raises(ValueError, match=r"8x8 patch kernel but the encoder's patch_size is 16x16"):
        ASTEncoder("tiny224", depth=1, input_tdim=128, fstride=16, tstride=16, init_from=str(path))


def test_audioset_ast_initialises_flexible_encoder_of_another_length(audioset_file):
    """10/10 AudioSet grid 12x101 -> cut to the 512-frame length (12x50,
    AST's rule) -> resampled to the 16/16 base grid 8x32 (FlexiAST's rule)."""
    from fastast_plugin.weights.resize import resample_pos_embed

    path, sd = audioset_file
    with pytest.raises(ValueError, match=r"10/10, got 16/16.*flexible='both'"):
        from_pretrained(path, input_tdim=512, fstride=16, tstride=16)
    model = from_pretrained(path, input_tdim=512, fstride=16, tstride=16, flexible="both")
    assert model.encoder.grid_size == model.encoder.base_grid_size == (8, 32)
    cut = adapt_pos_embed(sd["module.v.pos_embed"], (12, 101), (12, 50))
    expected = resample_pos_embed(cut, (12, 50), (8, 32), 2)
    assert torch.equal(model.encoder.pos_embed, expected)
    assert torch.equal(
        model.encoder.patch_embed.proj.weight, sd["module.v.patch_embed.proj.weight"]
    )
