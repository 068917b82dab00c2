"""Inference: the ``AudioClassifier`` interface, ``fastast classify``, export, ONNX and int8.

* ``classifier``: ``AudioClassifier`` (SpeechBrain ``Pretrained``).
* ``classify``: the ``fastast classify`` command.
* ``export``: ``fastast export``, the inference folder of a model.
* ``onnx``: ONNX export and ONNX Runtime inference.
* ``quantize``: dynamic int8 linear layers.

Imports ``weights``, ``models`` and ``data`` only. This ``__init__`` also
serves the names of the flat package's ``inference`` module
(``fastast_plugin.inference.load_weights`` in exported ``hyperparams.yaml``).

Authors
 * fastast developers 2026
"""

from fastast_plugin.inference.classifier import (
    AudioClassifier,
    FileResult,
    MultiLabelOutput,
    Prediction,
    Window,
    load_weights,
)
from fastast_plugin.inference.export import export_checkpoint, export_model

__all__ = [
    "AudioClassifier",
    "FileResult",
    "MultiLabelOutput",
    "Prediction",
    "Window",
    "export_checkpoint",
    "export_model",
    "load_weights",
]
