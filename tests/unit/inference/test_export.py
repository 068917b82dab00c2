"""export: inference folders from models and checkpoints, read back by
from_pretrained without executing their YAML; label files."""

import json

import pytest
import torch

from fastast_plugin.data.labels import read_labels
from fastast_plugin.inference.export import export_checkpoint, export_model
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.weights.state_dict import CheckpointError


def tiny_model(n_classes=3, **encoder):
    torch.manual_seed(0)
    model = ASTClassifier(
        ASTEncoder("tiny224", depth=2, input_tdim=128, **encoder),
        ASTHead(192, n_classes, layer_norm_eps=1e-12),
    )
    with torch.no_grad():  # off the init, so that every tensor matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize(
    "encoder",
    [
        {},
        {"fstride": 12, "tstride": 12, "r": [4, -1.0]},
        {"keep_ratio": 0.8, "prop_attn": False},
        {"r": 4, "pooling": "patch_mean"},
    ],
    ids=["plain", "schedule", "keep_ratio", "patch_mean"],
)
def test_round_trip_gives_the_same_model(tmp_path, encoder, device):
    model = tiny_model(**encoder)
    export_model(model, tmp_path, KaldiFbank(mean=-4.0, std=4.0), ["a", "b", "c"])
    loaded = from_pretrained(tmp_path)
    x = torch.randn(2, 128, 128, device=device)
    assert torch.equal(model.to(device)(x), loaded.to(device)(x))
    assert loaded.encoder.init_kwargs() == model.encoder.init_kwargs()
    assert loaded.labels == ["a", "b", "c"]
    assert loaded.head.norm.eps == 1e-12


def test_flexible_model_keeps_its_run_time_patch_size(tmp_path):
    model = tiny_model(fstride=16, tstride=16, flexible="both")
    model.encoder.patch_size = 32
    export_model(model, tmp_path, KaldiFbank())
    loaded = from_pretrained(tmp_path)
    assert loaded.encoder.patch_size == (32, 32)
    x = torch.randn(1, 128, 128)
    assert torch.equal(model(x), loaded(x))


def test_overrides_apply_to_an_exported_folder(tmp_path):
    export_model(tiny_model(r=4), tmp_path, KaldiFbank())
    loaded = from_pretrained(tmp_path, r=8, input_tdim=256)
    assert loaded.encoder.r == 8 and loaded.encoder.input_tdim == 256
    assert loaded(torch.randn(1, 256, 128)).shape == (1, 3)


def test_config_records_features_and_labels(tmp_path):
    features = KaldiFbank(target_length=99, mean=-6.845978, std=5.5654526)
    export_model(tiny_model(), tmp_path, features, ["x", "y", "z"], multi_label=True)
    config = json.loads((tmp_path / "fastast_config.json").read_text())
    assert config["features"] == {
        "sample_rate": 16000,
        "n_mels": 128,
        "mean": -6.845978,
        "std": 5.5654526,
        "target_length": 128,  # the model's input length, not the extractor's
    }
    assert config["labels"] == ["x", "y", "z"] and config["multi_label"] is True
    assert read_labels(tmp_path / "label_encoder.txt") == ["x", "y", "z"]


def test_from_pretrained_never_executes_the_folder_yaml(tmp_path):
    export_model(tiny_model(), tmp_path, KaldiFbank())
    marker = tmp_path / "planted"
    with open(tmp_path / "hyperparams.yaml", "a", encoding="utf-8") as f:
        f.write(f"\nplanted: !apply:os.mkdir [{str(marker)!r}]\n")
    from_pretrained(tmp_path)
    assert not marker.exists()


def test_a_foreign_config_is_refused(tmp_path):
    (tmp_path / "fastast_config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="fastast_config.json.*fastast-export"):
        from_pretrained(tmp_path)


def test_label_count_must_match_the_head(tmp_path):
    source = tmp_path / "model.pth"
    torch.save(tiny_model().state_dict(), source)
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    with pytest.raises(ValueError, match="labels.txt.*2.*3 classes"):
        export_checkpoint(source, tmp_path / "out", labels=labels, input_tdim=128)


def test_export_checkpoint_defaults_to_audioset_statistics(tmp_path):
    source = tmp_path / "model.pth"
    torch.save(tiny_model().state_dict(), source)
    out = export_checkpoint(source, tmp_path / "out", input_tdim=128, keep_ratio=0.9)
    config = json.loads((out / "fastast_config.json").read_text())
    assert (config["features"]["mean"], config["features"]["std"]) == (-4.2677393, 4.5689974)
    assert config["encoder"]["keep_ratio"] == 0.9 and config["multi_label"] is False
    again = export_checkpoint(out, tmp_path / "again", r=2)  # an export re-exported
    assert json.loads((again / "fastast_config.json").read_text())["features"] == config["features"]


def test_an_r_override_replaces_an_exported_keep_ratio(tmp_path):
    """r, keep_ratio and the schedule are one setting: from_pretrained and fastast export."""
    from fastast_plugin import cli

    export_model(tiny_model(keep_ratio=0.5), tmp_path / "kept", KaldiFbank())
    plain = tiny_model(r=8)  # the same weights, merging 8 tokens per block
    x = torch.randn(2, 128, 128)
    loaded = from_pretrained(tmp_path / "kept", r=8)
    assert (loaded.encoder.r, loaded.encoder.keep_ratio) == (8, None)
    assert torch.equal(loaded(x), plain(x))
    cli.run(["export", str(tmp_path / "kept"), str(tmp_path / "r16"), "--r", "16"])
    stored = json.loads((tmp_path / "r16" / "fastast_config.json").read_text())["encoder"]
    assert (stored["r"], stored["keep_ratio"]) == (16, None)
    schedule = from_pretrained(tmp_path / "r16", r=[4, -1.0]).encoder
    assert (
        schedule.merge_schedule()
        == ASTEncoder("tiny224", depth=2, input_tdim=128, r=[4, -1.0]).merge_schedule()
    )
    # and the other way round: a keep_ratio override replaces a stored r
    assert from_pretrained(tmp_path / "r16", keep_ratio=0.9).encoder.r == 0


@pytest.mark.parametrize("stride", [None, 12], ids=["base_stride_10", "hand_set_12"])
def test_a_flexible_encoder_keeps_its_stride(tmp_path, stride):
    """Patch 16 at stride 10 (the base) or a hand-set stride come back as saved."""
    from fastast_plugin.training.brain import AudioClassifierBrain
    from fastast_plugin.training.recipe import _write_model_file

    model = tiny_model(fstride=10, tstride=10, flexible="both")
    if stride is not None:
        model.encoder.set_patch_size(16, stride=stride)
    expected_stride = model.encoder.patch_stride
    export_model(model, tmp_path / "export", KaldiFbank())
    modules = {"embedding_model": model.encoder, "classifier": model.head}
    brain = AudioClassifierBrain(
        modules, hparams={"brain_settings": {"n_classes": 3}}, run_opts={"device": "cpu"}
    )
    _write_model_file(brain, str(tmp_path / "model.pt"))
    x = torch.randn(2, 128, 128)
    for source in (tmp_path / "export", tmp_path / "model.pt"):
        loaded = from_pretrained(source)
        assert loaded.encoder.patch_stride == expected_stride, source
        assert torch.equal(loaded(x), model(x)), source
    # a new patch size without a stride runs non-overlapping, as set_patch_size does
    assert from_pretrained(tmp_path / "export", patch_size=32).encoder.patch_stride == (32, 32)
