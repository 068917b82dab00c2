"""fastast: fast and flexible Audio Spectrogram Transformers for SpeechBrain.

Token-merged (ToMe) and flexible-patch AST encoders, AST-exact features and
checkpoint loading, as ordinary PyTorch modules usable from hyperpyyaml.
``AudioClassifier`` (the inference interface) and ``AudioClassifierBrain``
(training) are imported on first use, so ``import fastast_plugin`` does not
load SpeechBrain's inference and training machinery.

The package is layered by role; each layer imports only those listed before
it: ``weights`` (reading, converting and fitting checkpoints, the registry of
published weights) < ``models`` (encoders, merging, features, DyMN,
``from_pretrained``) < ``data`` (audio, manifests, augmentation, shards) <
``cli_options`` (the options the commands share) < ``inference``
(``AudioClassifier``, export, ONNX, int8) < ``evaluation`` (metrics,
benchmarks, sweeps, pictures) < ``training`` (the Brain, recipes, losses,
teachers) < ``cli``. Old flat module paths (``fastast_plugin.ast``,
``fastast_plugin.features``, ...) still resolve (``fastast_plugin._moved``).

Authors
 * fastast developers 2026
"""

from fastast_plugin import _moved
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.pretrained import from_pretrained

_moved.install()

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
    "AudioClassifier": "fastast_plugin.inference.classifier",
    "AudioClassifierBrain": "fastast_plugin.training.brain",
}


def __getattr__(name):
    """``fastast_plugin.AudioClassifier`` and ``AudioClassifierBrain``, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'fastast_plugin' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
