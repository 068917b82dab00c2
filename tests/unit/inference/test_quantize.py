"""Dynamic int8: every linear layer quantised, merging on top, ONNX Runtime's route."""

import importlib.util

import pytest
import torch

from fastast_plugin.inference.quantize import _count_quantized, quantize_linear_int8
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead


def _trained_model():
    """tiny224 (2 blocks, so that a merge reaches the class token) fitted in a few steps to 3 well separated feature classes."""
    torch.manual_seed(0)
    enc = ASTEncoder("tiny224", input_tdim=64, depth=2, fstride=16, tstride=16)
    model = ASTClassifier(enc, ASTHead(192, 3))
    centres = 2.0 * torch.randn(3, 1, 128)
    labels = torch.arange(60) % 3
    feats = centres[labels] + torch.randn(60, 64, 128)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_labels = torch.arange(90) % 3
    test_feats = centres[test_labels] + torch.randn(90, 64, 128)
    return model.eval(), test_feats, test_labels


def test_every_linear_layer_is_int8_and_the_original_is_untouched():
    model = ASTClassifier(ASTEncoder("tiny224", input_tdim=64, depth=2), ASTHead(192, 3)).eval()
    int8 = quantize_linear_int8(model)
    # qkv, proj, fc1, fc2 per block, and the head.
    assert _count_quantized(int8) == 4 * 2 + 1
    assert _count_quantized(model) == 0
    assert isinstance(int8.encoder.patch_embed.proj, torch.nn.Conv2d)  # stays fp32


def test_int8_keeps_the_trained_model_s_predictions_with_and_without_merging():
    model, feats, labels = _trained_model()
    int8 = quantize_linear_int8(model)
    outputs = {}
    for setting in ({"r": 0}, {"keep_ratio": 0.85}):
        model.encoder.set_merge(**setting)
        int8.encoder.set_merge(**setting)
        with torch.no_grad():
            ref, got = model(feats), int8(feats)
        assert (ref.argmax(1) == labels).float().mean() == 1.0, setting
        outputs[next(iter(setting))] = ref
        assert torch.equal(got.argmax(1), ref.argmax(1)), setting
        error = (got - ref).abs().max() / ref.abs().max()
        # Quantised for real (not a copy in fp32), yet within a few percent.
        assert 1e-4 < error < 0.05, (setting, float(error))
    assert not torch.allclose(outputs["r"], outputs["keep_ratio"])  # the merge matters


def test_merge_schedule_is_the_same_on_the_int8_model(block_token_counts):
    model = ASTClassifier(ASTEncoder("tiny224", input_tdim=128, depth=3), ASTHead(192, 3)).eval()
    model.encoder.set_merge(keep_ratio=0.85)
    int8 = quantize_linear_int8(model)
    feats = torch.randn(2, 128, 128)
    assert block_token_counts(int8.encoder, feats) == block_token_counts(model.encoder, feats)
    assert block_token_counts(int8.encoder, feats) == [124, 106, 90]


def test_gpu_model_is_a_clear_error():
    model = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(ValueError, match="model.cpu"):
        quantize_linear_int8(model)


@pytest.mark.skipif(
    any(importlib.util.find_spec(n) is None for n in ("onnx", "onnxscript", "onnxruntime")),
    reason="ONNX Runtime int8 needs onnx, onnxscript and onnxruntime",
)
def test_onnx_runtime_int8_keeps_settings_and_predictions(tmp_path):
    from fastast_plugin.inference.onnx import OnnxClassifier, export_onnx
    from fastast_plugin.inference.quantize import quantize_onnx

    model, feats, labels = _trained_model()
    model.encoder.set_merge(keep_ratio=0.85)
    fp32 = export_onnx(model, tmp_path / "m.onnx")
    int8 = quantize_onnx(fp32, tmp_path / "m.int8.onnx")
    runner = OnnxClassifier(int8)
    assert runner.settings == OnnxClassifier(fp32).settings
    assert runner.settings["merge_schedule"] == model.encoder.merge_schedule()
    with torch.no_grad():
        ref = model(feats)
    got = runner(feats)
    assert torch.equal(got.argmax(1), ref.argmax(1))
    error = (got - ref).abs().max() / ref.abs().max()
    # ONNX Runtime also quantises activations per tensor: coarser than PyTorch's.
    assert 1e-4 < error < 0.1, float(error)
    # int8 weights: well under half the fp32 file.
    assert (tmp_path / "m.int8.onnx").stat().st_size < 0.45 * (tmp_path / "m.onnx").stat().st_size
