"""Checkpoints in and out: safe reading, format conversion, fitting to an encoder, named weights.

The bottom layer of the package: it imports no other subpackage.

* ``state_dict``: safe reading (``weights_only`` torch files, safetensors,
  detected by content) and strict loading with readable errors.
* ``convert``: original AST, Hugging Face AST, timm ViT/DeiT and FlexiAST
  state dicts to ours.
* ``resize``: patch geometry, PI-resize of patch kernels, position-embedding
  resampling (FlexiViT / FlexiAST).
* ``fit``: a checkpoint's architecture, fitted to an encoder's grid
  (``init_from``).
* ``folder``: the exported inference folder's file names, format version
  and config (``read_export_config``).
* ``registry``: published weights by name, downloaded to a cache.

This ``__init__`` also serves the names of the flat package's ``weights``
module (``fastast_plugin.weights.load_encoder_weights``, ...).

Authors
 * fastast developers 2026
"""

from fastast_plugin.weights.fit import (
    Checkpoint,
    adapt_pos_embed,
    fit_to_encoder,
    frames_for_grid,
    load_encoder_weights,
    read_checkpoint,
    read_for_encoder,
)
from fastast_plugin.weights.folder import read_export_config
from fastast_plugin.weights.registry import REGISTRY, PretrainedWeights, find, resolve
from fastast_plugin.weights.state_dict import (
    CheckpointError,
    CheckpointMismatchError,
    load_strict,
    read_state_dict,
)

__all__ = [
    "REGISTRY",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatchError",
    "PretrainedWeights",
    "adapt_pos_embed",
    "find",
    "fit_to_encoder",
    "frames_for_grid",
    "load_encoder_weights",
    "load_strict",
    "read_checkpoint",
    "read_export_config",
    "read_for_encoder",
    "read_state_dict",
    "resolve",
]
