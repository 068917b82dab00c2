"""fastast: fast and flexible Audio Spectrogram Transformers for SpeechBrain.

Token-merged (ToMe) and flexible-patch AST encoders, AST-exact features and
checkpoint loading, as ordinary PyTorch modules usable from hyperpyyaml.
``AudioClassifier`` (the inference interface) and ``AudioClassifierBrain``
(training) are imported on first use, so ``import fastast_plugin`` does not
load SpeechBrain's inference and training machinery.

Authors
 * fastast developers 2026
"""

from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.features import KaldiFbank

__all__ = [
    "ASTClassifier",
    "ASTEncoder",
    "ASTHead",
    "AudioClassifier",
    "AudioClassifierBrain",
    "KaldiFbank",
    "from_pretrained",
]

# Imported on first access (PEP 562): name -> module.
_LAZY = {
    "AudioClassifier": "fastast_plugin.inference",
    "AudioClassifierBrain": "fastast_plugin.brain",
}


def __getattr__(name):
    """``fastast_plugin.AudioClassifier`` and ``AudioClassifierBrain``, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'fastast_plugin' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
