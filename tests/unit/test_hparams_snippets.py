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
