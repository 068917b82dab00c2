"""Reading checkpoints and fitting them to an encoder (fastast_plugin.weights.fit):
architecture inference, AST's pos-embed rule, ImageNet initialisation,
``load_encoder_weights`` / ``ASTEncoder(init_from=...)`` and file errors."""

import json

import pytest
import torch

from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.weights.fit import (
    adapt_pos_embed,
    fit_to_encoder,
    frames_for_grid,
    load_encoder_weights,
    read_checkpoint,
)
from fastast_plugin.weights.state_dict import CheckpointMismatchError


def test_adapt_pos_embed_freq_axis_and_errors(pos_grid):
    pos = torch.randn(1, 1 + 12 * 10, 4)
    out = adapt_pos_embed(pos, (12, 10), (8, 10), num_prefix_tokens=1)
    assert torch.equal(pos_grid(out, (8, 10), 1), pos_grid(pos, (12, 10), 1)[:, :, 2:10])
    with pytest.raises(ValueError, match=r"has 121 tokens, expected 2 prefix"):
        adapt_pos_embed(pos, (12, 10), (8, 10))


def test_timm_hub_folder_is_imagenet(deit_file, tmp_path):
    from safetensors.torch import save_file

    path, sd = deit_file
    save_file(sd, tmp_path / "model.safetensors")
    timm_config = {"architecture": "deit_tiny_distilled_patch16_384"}
    (tmp_path / "config.json").write_text(json.dumps(timm_config))
    ckpt = read_checkpoint(tmp_path)
    assert ckpt.family == "timm" and ckpt.grid == (24, 24) and ckpt.strides is None


def test_vit_init_with_one_prefix_token(tmp_path, pos_grid):
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)
    sd = vit.state_dict()
    path = tmp_path / "vit.pth"
    torch.save(sd, path)
    enc = ASTEncoder("tiny224", depth=1, input_tdim=128, num_prefix_tokens=1)
    load_encoder_weights(enc, path)
    source = pos_grid(sd["pos_embed"], (14, 14), prefix=1)
    cut = source[:, :, 1:13, 1:13]  # 14 // 2 - 12 // 2 = 1
    assert torch.equal(pos_grid(enc.pos_embed, (12, 12), prefix=1), cut)


def test_init_from_in_yaml(deit_file, tmp_path, hf_ast):
    from hyperpyyaml import load_hyperpyyaml

    path, sd = deit_file
    hf = hf_ast.model()
    hf_ast.save(hf, tmp_path)
    hparams = load_hyperpyyaml(
        f"""
imagenet: !new:fastast_plugin.models.ast.ASTEncoder
    model_size: tiny224
    depth: 1
    input_tdim: 512
    init_from: {path}
audio: !new:fastast_plugin.models.ast.ASTEncoder
    embed_dim: 64
    depth: 2
    num_heads: 4
    input_tdim: 128
    layer_norm_eps: 1.0e-12
    init_from: {tmp_path}
"""
    )
    assert torch.equal(hparams["imagenet"].norm.weight, sd["norm.weight"])
    audio = hparams["audio"].eval()
    x = torch.randn(2, 128, 128)
    with torch.no_grad():
        expected = hf.audio_spectrogram_transformer(x).pooler_output
        assert (audio(x).squeeze(1) - expected).abs().max() <= 1e-4


def test_missing_paths_and_incomplete_folders(tmp_path, hf_ast):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="folder without weights"):
        read_checkpoint(tmp_path)
    hf = hf_ast.model()
    hf_ast.save(hf, tmp_path / "hf")
    (tmp_path / "hf" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_checkpoint(tmp_path / "hf")


@pytest.mark.parametrize(
    "t_dim, tstride, patch, frames",
    [(101, 10, 16, 1024), (12, 10, 16, 128), (85, 12, 16, 1024), (50, 10, 16, 512), (3, 7, 5, 19)],
)
def test_frames_for_grid_prefers_multiples_of_16(t_dim, tstride, patch, frames):
    assert frames_for_grid(t_dim, tstride, patch) == frames
    assert (frames - patch) // tstride + 1 == t_dim  # the same grid


def test_fixed_encoder_of_other_strides_is_a_mismatch(tmp_path):
    path = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save(ASTEncoder("tiny224", depth=1, input_tdim=128).state_dict(), path)
    encoder = ASTEncoder("tiny224", depth=1, input_tdim=128, fstride=16, tstride=16)
    with pytest.raises(CheckpointMismatchError, match=r"fstride/tstride 10/10, got 16/16"):
        fit_to_encoder(read_checkpoint(path), encoder)
    with pytest.raises(CheckpointMismatchError, match=str(path)):
        load_encoder_weights(encoder, path)


def test_flexible_encoder_guesses_its_own_strides(tmp_path):
    """An unnamed file whose grid fits neither 10/10 nor its patch size
    (12/12 strides): a flexible encoder's own strides are the last guess."""
    src = ASTEncoder("tiny224", depth=1, input_tdim=128, fstride=12, tstride=12)
    path = tmp_path / "unnamed.pth"
    torch.save(src.state_dict(), path)
    assert read_checkpoint(path, stride_guesses=[(12, 12)]).strides == (12, 12)
    enc = ASTEncoder(
        "tiny224",
        depth=1,
        input_tdim=128,
        fstride=12,
        tstride=12,
        flexible="both",
        init_from=str(path),
    )
    assert torch.equal(enc.pos_embed, src.pos_embed)
