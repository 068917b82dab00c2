"""The top-level YAML snippets build working modules from hyperpyyaml."""

from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml

SNIPPET = Path(__file__).parents[2] / "hparams" / "tome_ast_encoder.yaml"


def test_encoder_snippet_classifies_waveforms():
    with open(SNIPPET) as f:
        hparams = load_hyperpyyaml(f, {"model_size": "tiny224", "n_classes": 5})
    wavs = torch.randn(2, 16000)
    lens = torch.tensor([1.0, 0.7])
    feats = hparams["compute_features"](wavs, lens)
    assert feats.shape == (2, 128, 128)
    emb = hparams["embedding_model"](feats, lens)
    assert emb.shape == (2, 1, 192)
    assert hparams["classifier"](emb).shape == (2, 1, 5)
    assert hparams["embedding_model"].r == 16
    assert hparams["embedding_model"].merge_schedule()[0] == 16


def test_encoder_snippet_takes_tome_schedule():
    """r: [16, -1.0] in YAML is ToMe's (r, inflection) schedule."""
    with open(SNIPPET) as f:
        hparams = load_hyperpyyaml(f, {"model_size": "tiny224", "r": [16, -1.0]})
    enc = hparams["embedding_model"]
    assert enc.merge_schedule() == [32, 29, 26, 23, 20, 17, 14, 11, 8, 5, 2, 0]


HPARAMS = SNIPPET.parent


def test_flexiast_snippet_runs_at_the_sampled_patch_sizes():
    with open(HPARAMS / "flexiast_encoder.yaml") as f:
        hparams = load_hyperpyyaml(f, {"target_length": 128, "n_classes": 3})
    encoder, sampler = hparams["embedding_model"], hparams["patch_size_sampler"]
    feats = torch.randn(1, 128, 128)
    sizes = set()
    for _ in range(4):
        encoder.set_patch_size(sampler())
        sizes.add(encoder.patch_size)
        assert hparams["classifier"](encoder(feats)).shape == (1, 1, 3)
    assert len(sizes) > 1 and encoder.flexible == "both"


def test_dymn_teacher_snippet_distils(tmp_path):
    from fastast_plugin.models.dymn.model import DyMN

    checkpoint = tmp_path / "dymn04_as.pt"
    torch.save(DyMN(num_classes=5, width_mult=0.4).state_dict(), checkpoint)
    overrides = {"n_classes": 5, "teacher_checkpoint": str(checkpoint), "teacher_width": 0.4}
    with open(HPARAMS / "dymn_teacher.yaml") as f:
        hparams = load_hyperpyyaml(f, overrides)
    with torch.no_grad():
        out = hparams["teacher"](torch.randn(2, 16000), torch.ones(2), ["a", "b"])
    assert out.logits.shape == (2, 5) and bool(out.mask.all())
    student = torch.zeros(2, 5, requires_grad=True)
    result = hparams["kd_loss"](student, torch.zeros(2, 5), out.logits, out.mask)
    result.loss.backward()
    assert result.n_kd == 2 and student.grad.abs().sum() > 0


def test_inference_snippet_loads_a_hand_made_folder(tmp_path):
    from safetensors.torch import save_file
    from speechbrain.dataio.encoder import CategoricalEncoder

    from fastast_plugin.inference.classifier import AudioClassifier
    from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    from fastast_plugin.models.features import KaldiFbank

    torch.manual_seed(0)
    model = ASTClassifier(ASTEncoder("tiny224", input_tdim=128), ASTHead(192, 2)).eval()
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    labels = CategoricalEncoder()
    labels.update_from_iterable(["speech", "music"])
    labels.save(tmp_path / "label_encoder.txt")
    (tmp_path / "hyperparams.yaml").write_text((HPARAMS / "inference.yaml").read_text())
    overrides = {"model_size": "tiny224", "embed_dim": 192, "n_classes": 2, "input_tdim": 128}
    clf = AudioClassifier.from_hparams(source=tmp_path, overrides=overrides)
    wav = torch.randn(1, 16000)
    out_prob = clf.classify_batch(wav)[0]
    feats = KaldiFbank(target_length=128, mean=-4.2677393, std=4.5689974)(wav)
    with torch.no_grad():
        expected = torch.log_softmax(model(feats), -1)
    torch.testing.assert_close(out_prob, expected, atol=1e-5, rtol=1e-5)
