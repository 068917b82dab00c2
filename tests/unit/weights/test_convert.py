"""Format detection and key converters (fastast_plugin.weights.convert)."""

import pytest
import torch

from fastast_plugin.weights.convert import (
    convert_ast_original,
    convert_flexiast,
    convert_hf_ast,
    convert_timm_vit,
    detect_format,
)
from fastast_plugin.weights.state_dict import CheckpointError

KERNEL_1 = torch.zeros(4, 1, 16, 16)
KERNEL_3 = torch.zeros(4, 3, 16, 16)


@pytest.mark.parametrize(
    "keys, family",
    [
        ({"module.v.patch_embed.proj.weight": KERNEL_1}, "ast"),
        ({"v.patch_embed.proj.weight": KERNEL_1}, "ast"),
        ({"encoder.patch_embed.proj.weight": KERNEL_1}, "ast"),
        ({"patch_embed.proj.weight": KERNEL_1}, "ast"),
        ({"patch_embed.proj.weight": KERNEL_3}, "timm"),
        ({"module.patch_embed.proj.weight": KERNEL_3}, "timm"),
        ({"audio_spectrogram_transformer.layernorm.weight": torch.ones(4)}, "hf"),
        ({"embeddings.patch_embeddings.projection.weight": KERNEL_1}, "hf"),
        (
            {
                "module.pos_embed.pos_embed": torch.zeros(1, 9, 4),
                "module.patch_embed.proj.weight": KERNEL_1,
            },
            "flexiast",
        ),
        ({"pos_embed.pos_embed": torch.zeros(1, 9, 4)}, "flexiast"),
    ],
)
def test_detect_format(keys, family):
    assert detect_format(keys) == family


@pytest.mark.parametrize(
    "keys, found",
    [
        ({"layer.weight": torch.zeros(2, 2)}, "patch kernel: none"),
        ({"patch_embed.proj.weight": torch.zeros(4, 2, 16, 16)}, r"shape \(4, 2, 16, 16\)"),
    ],
)
def test_unknown_format_is_named(keys, found):
    with pytest.raises(CheckpointError, match="Cannot tell the checkpoint format of x.pth") as err:
        detect_format(keys, "x.pth")
    assert found.replace("\\", "") in str(err.value).replace("\\", "")


def test_original_ast_names():
    sd = {
        "module.v.blocks.0.attn.qkv.weight": torch.ones(6, 2),
        "module.v.head_dist.bias": torch.zeros(5),
        "module.mlp_head.0.weight": torch.ones(2),
        "module.mlp_head.1.weight": torch.ones(5, 2),
        "cls_token": torch.zeros(1, 1, 2),  # a bare fastast encoder key
        "head.linear.bias": torch.zeros(5),  # a fastast classifier key
    }
    assert sorted(convert_ast_original(sd)) == [
        "encoder.blocks.0.attn.qkv.weight",
        "encoder.cls_token",
        "head.linear.bias",
        "head.linear.weight",
        "head.norm.weight",
    ]


@pytest.mark.parametrize(
    "layer_key",
    ["encoder.layer.{i}.attention.attention.{n}", "layers.{i}.attention.{q}_proj"],
    ids=["hub", "transformers5"],
)
def test_hf_qkv_is_fused_in_query_key_value_order(layer_key):
    sd = {}
    for j, name in enumerate(["query", "key", "value"]):
        key = layer_key.format(i=1, n=name, q=name[0])
        sd[f"audio_spectrogram_transformer.{key}.weight"] = torch.full((2, 2), float(j))
        sd[f"audio_spectrogram_transformer.{key}.bias"] = torch.full((2,), float(j))
    out = convert_hf_ast(sd)
    assert sorted(out) == ["encoder.blocks.1.attn.qkv.bias", "encoder.blocks.1.attn.qkv.weight"]
    assert out["encoder.blocks.1.attn.qkv.bias"].tolist() == [0, 0, 1, 1, 2, 2]


def test_hf_renames_and_leaves_unknown_keys():
    sd = {
        "audio_spectrogram_transformer.embeddings.distillation_token": torch.zeros(1, 1, 2),
        "audio_spectrogram_transformer.encoder.layer.0.layernorm_after.weight": torch.ones(2),
        "audio_spectrogram_transformer.encoder.layer.0.output.dense.weight": torch.ones(2, 8),
        "classifier.dense.weight": torch.ones(3, 2),
        "audio_spectrogram_transformer.encoder.layer.0.attention.attention.query.weight": torch.ones(
            2, 2
        ),
        "mystery.weight": torch.ones(1),
    }
    assert sorted(convert_hf_ast(sd)) == [
        "encoder.blocks.0.mlp.fc2.weight",
        "encoder.blocks.0.norm2.weight",
        "encoder.dist_token",
        "encoder.layer.0.attention.attention.query.weight",  # incomplete q/k/v: reported as is
        "head.linear.weight",
        "mystery.weight",
    ]


def test_timm_kernel_is_summed_over_rgb_and_heads_dropped():
    kernel = torch.randn(4, 3, 16, 16)
    sd = {
        "patch_embed.proj.weight": kernel,
        "head.weight": torch.zeros(9, 4),
        "norm.bias": torch.ones(4),
    }
    out = convert_timm_vit(sd)
    assert sorted(out) == ["encoder.norm.bias", "encoder.patch_embed.proj.weight"]
    assert torch.equal(out["encoder.patch_embed.proj.weight"], kernel.sum(1, keepdim=True))


def test_flexiast_uses_its_stored_kernel_and_grid():
    kernel, pos = torch.randn(4, 1, 16, 16), torch.randn(1, 1 + 8 * 4, 4)
    sd = {
        "module.patch_embed.proj.weight": kernel,
        "module.pos_embed.pos_embed": pos,
        "module.v.patch_embed.proj.weight": torch.zeros(4, 1, 8, 8),
        "module.v.pos_embed": torch.zeros(1, 197, 4),
        "module.v.head.weight": torch.zeros(1000, 4),
        "module.mlp_head.1.bias": torch.zeros(3),
    }
    out = convert_flexiast(sd)
    assert sorted(out) == [
        "encoder.patch_embed.proj.weight",
        "encoder.pos_embed",
        "head.linear.bias",
    ]
    assert out["encoder.patch_embed.proj.weight"] is kernel and out["encoder.pos_embed"] is pos
