"""ONNX export: merged and flexible models match PyTorch in onnxruntime."""

import importlib.util
import json

import pytest
import torch

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.merge import bipartite_soft_matching, merge_source, merge_wavg

MISSING = [
    name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"ONNX export tests need {', '.join(MISSING)} (pip install onnx onnxscript onnxruntime)",
)

TOLERANCE = 1e-4


def _model(flexible="none", depth=2, frames=128, pooling="prefix_mean", **merge):
    torch.manual_seed(0)
    strides = {"fstride": 16, "tstride": 16} if flexible != "none" else {}
    enc = ASTEncoder(
        "tiny224", input_tdim=frames, depth=depth, flexible=flexible, pooling=pooling, **strides
    )
    model = ASTClassifier(enc, ASTHead(192, 5), labels=list("abcde")).eval()
    enc.set_merge(**merge)
    return model


def _ort(path):
    from fastast_plugin.inference.onnx import OnnxClassifier

    return OnnxClassifier(path)


CASES = {
    "r0": ({}, {}),
    "r16": ({}, {"r": 16}),
    "schedule": ({}, {"r": (16, -1.0)}),
    "keep085": ({}, {"keep_ratio": 0.85}),
    "flexible_patch24_keep085": ({"flexible": "both", "patch": 24}, {"keep_ratio": 0.85}),
    "patch_mean_r16": ({"pooling": "patch_mean"}, {"r": 16}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_matches_pytorch_at_any_batch(case, tmp_path):
    from fastast_plugin.inference.onnx import export_onnx

    build, merge = CASES[case]
    model = _model(
        build.get("flexible", "none"), pooling=build.get("pooling", "prefix_mean"), **merge
    )
    if "patch" in build:
        model.encoder.set_patch_size(build["patch"])
        assert model.encoder.patch_size == (24, 24)
    path = export_onnx(model, tmp_path / f"{case}.onnx")
    onnx_model = _ort(path)
    assert onnx_model.settings["merge_schedule"] == model.encoder.merge_schedule()
    assert onnx_model.settings["patch_size"] == list(model.encoder.patch_size)
    assert onnx_model.labels == list("abcde")
    for batch in (1, 3):  # the batch axis is dynamic (exported at 2)
        feats = torch.randn(batch, 128, 128)
        with torch.no_grad():
            expected = model(feats)
        got = onnx_model(feats)
        assert got.shape == expected.shape == (batch, 5)
        assert (got - expected).abs().max() <= TOLERANCE, case


def test_merged_graph_really_merges(tmp_path):
    """The exported keep-0.85 graph gives the merged logits, not the r = 0 ones."""
    from fastast_plugin.inference.onnx import export_onnx

    model = _model(keep_ratio=0.85)
    path = export_onnx(model, tmp_path / "m.onnx")
    feats = torch.randn(2, 128, 128)
    with torch.no_grad():
        merged = model(feats)
        model.encoder.set_merge()
        unmerged = model(feats)
    got = _ort(path)(feats)
    assert (got - merged).abs().max() <= TOLERANCE
    assert (got - unmerged).abs().max() > 100 * TOLERANCE


def test_shorter_input_is_padded_as_in_pad_mode_and_state_is_restored(tmp_path):
    from fastast_plugin.inference.onnx import export_onnx

    model = _model(r=16)
    model.encoder.length_mode = "native"
    model.train()
    path = export_onnx(model, tmp_path / "m.onnx")
    assert model.encoder.length_mode == "native" and model.training
    model.eval()
    model.encoder.length_mode = "pad"
    feats = torch.randn(2, 100, 128)  # padded to 128 frames
    with torch.no_grad():
        expected = model(feats)
    assert (_ort(path)(feats) - expected).abs().max() <= TOLERANCE
    long_feats = torch.randn(2, 150, 128)  # cropped to 128 frames
    with torch.no_grad():
        expected = model(long_feats)
    assert (_ort(path)(long_feats) - expected).abs().max() <= TOLERANCE


class _Matching(torch.nn.Module):
    """Bipartite matching + weighted merge + source tracing as one graph."""

    def __init__(self, r):
        super().__init__()
        self.r = r

    def forward(self, metric, x):
        merge, unmerge = bipartite_soft_matching(metric, self.r, class_token=True)
        merged, size = merge_wavg(merge, x)
        return merged, size, merge_source(merge, x), unmerge(merged)


def test_exported_matching_keeps_tied_scores_in_eager_order(tmp_path):
    """Many exact ties: ONNX TopK must order them as the stable sort does."""
    import onnxruntime as ort

    torch.manual_seed(0)
    # Metrics drawn from 3 directions: most similarities tie exactly.
    metric = torch.eye(3)[torch.randint(0, 3, (2, 31))] + 0.0
    x = torch.randn(2, 31, 8)
    module = _Matching(r=9)
    program = torch.onnx.export(
        module, (metric, x), dynamo=True, input_names=["metric", "x"], verbose=False
    )
    path = tmp_path / "matching.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"metric": metric.numpy(), "x": x.numpy()})
    for out, expected in zip(got, module(metric, x)):
        assert torch.equal(torch.from_numpy(out), expected)


def test_onnx_model_refuses_run_time_changes(tmp_path):
    from fastast_plugin.inference.onnx import export_onnx

    path = export_onnx(_model(depth=1, r=4), tmp_path / "m.onnx")
    onnx_model = _ort(path)
    with pytest.raises(RuntimeError, match="export again"):
        onnx_model.set_merge(r=8)
    with pytest.raises(ValueError, match="length_mode 'pad'"):
        onnx_model.length_mode = "native"
    with pytest.raises(ValueError, match=r"\[batch, time, 128\]"):
        onnx_model(torch.randn(1, 128, 64))
    assert json.loads(json.dumps(onnx_model.settings))["r"] == 4


def test_non_fp32_model_and_missing_metadata_are_clear_errors(tmp_path):
    from fastast_plugin.inference.onnx import OnnxClassifier, export_onnx

    with pytest.raises(TypeError, match="fp32"):
        export_onnx(_model(depth=1).double(), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="ASTClassifier"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "m.onnx")
    program = torch.onnx.export(
        torch.nn.Linear(2, 2), (torch.randn(1, 2),), dynamo=True, verbose=False
    )
    program.save(str(tmp_path / "plain.onnx"))
    with pytest.raises(ValueError, match="no 'fastast' metadata"):
        OnnxClassifier(tmp_path / "plain.onnx")


def test_audio_classifier_runs_the_onnx_model(tmp_path):
    from speechbrain.dataio.encoder import CategoricalEncoder

    from fastast_plugin.inference.classifier import AudioClassifier
    from fastast_plugin.inference.onnx import attach_onnx, export_onnx
    from fastast_plugin.models.features import KaldiFbank

    torch.manual_seed(0)
    labels = CategoricalEncoder()
    labels.load_or_create(tmp_path / "l.txt", from_iterables=[list("abcde")])
    encoder = ASTEncoder("tiny224", depth=2, input_tdim=128, keep_ratio=0.85)
    head = ASTHead(192, 5)
    modules = {
        "compute_features": KaldiFbank(target_length=128),
        "embedding_model": encoder,
        "classifier": head,
    }
    hparams = {"sample_rate": 16000, "label_encoder": labels, "multi_label": False}
    clf = AudioClassifier(modules, hparams, run_opts={"device": "cpu"})
    wavs = torch.randn(3, 40000)  # 2.5 s: two windows of 128 frames per clip
    expected = clf.classify_batch(wavs)
    path = export_onnx(
        ASTClassifier(clf.mods.embedding_model, clf.mods.classifier), tmp_path / "m.onnx"
    )
    attach_onnx(clf, path)
    got = clf.classify_batch(wavs)
    assert (got[0] - expected[0]).abs().max() <= TOLERANCE
    assert got[3] == expected[3]
    with pytest.raises(RuntimeError, match="export again"):
        clf.set_merge(r=2)
