"""ONNX export of an AST classifier (encoder + head), token merging included.

:func:`export_onnx` writes the encoder and head, at the merge setting
(``r`` / ``keep_ratio``) and patch size set on the model, as one ONNX graph
from features ``[batch, input_tdim, input_fdim]`` to logits
``[batch, classes]``, with a dynamic batch axis. It uses PyTorch's
``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``,
packages ``onnx`` and ``onnxscript``); the merge exports because
``fastast_plugin.models.merge`` sorts with ``topk`` while exporting (ONNX ``TopK``
keeps ties in index order, as the stable sort of eager mode). The graph is
fixed at the model's ``input_tdim`` in ``"pad"`` length mode: shorter
inputs are zero-padded (longer ones cropped) before the graph, exactly as
``ASTEncoder`` does in that mode, so the outputs equal PyTorch's.

:class:`OnnxClassifier` runs such a file in ``onnxruntime`` behind the
``ASTClassifier`` call signature, and :func:`attach_onnx` swaps it into an
``AudioClassifier`` interface in place of ``embedding_model`` and
``classifier``, so that ``classify_file`` and friends run the ONNX model.

Authors
 * fastast developers 2026
"""

import json
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OnnxClassifier", "attach_onnx", "export_onnx"]

# Key of the JSON settings in the ONNX file's metadata_props.
_METADATA_KEY = "fastast"
_INPUT_NAME = "feats"
_OUTPUT_NAME = "logits"


def _encoder_of(model):
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "merge_schedule"):
        raise TypeError(
            "export_onnx expects an ASTClassifier (an ASTEncoder as "
            f"model.encoder and a head), got {type(model).__name__}; build one "
            "with ASTClassifier(interface.mods.embedding_model, "
            "interface.mods.classifier)"
        )
    return encoder


def _onnx_settings(model):
    """The settings an exported graph is fixed at, as stored in its metadata.

    Arguments
    ---------
    model : ASTClassifier
        Encoder + head.

    Returns
    -------
    dict
        JSON-serialisable: ``input_tdim``, ``input_fdim``, ``r`` and
        ``keep_ratio`` as set, ``merge_schedule`` (tokens merged per block
        at ``input_tdim``), ``patch_size``, ``stride``, ``num_classes`` and
        ``labels`` (None when unknown).

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> enc = ASTEncoder("tiny224", input_tdim=128, depth=2, keep_ratio=0.85)
    >>> settings = _onnx_settings(ASTClassifier(enc, ASTHead(192, 3)))
    >>> settings["merge_schedule"], settings["patch_size"], settings["num_classes"]
    ([22, 18], [16, 16], 3)
    """
    encoder = _encoder_of(model)
    config = encoder.init_kwargs()
    head = getattr(model, "head", None)
    linear = getattr(head, "linear", None)
    return {
        "format_version": 1,
        "input_tdim": int(encoder.input_tdim),
        "input_fdim": int(encoder.input_fdim),
        "r": config["r"],
        "keep_ratio": config["keep_ratio"],
        "merge_schedule": [int(r) for r in encoder.merge_schedule()],
        "patch_size": list(encoder.patch_size),
        "stride": list(encoder.patch_stride),
        "num_classes": None if linear is None else int(linear.out_features),
        "labels": getattr(model, "labels", None),
    }


def export_onnx(model, path, opset_version: int | None = None, example_batch: int = 2):
    """Write ``model`` (encoder + head) to an ONNX file, batch axis dynamic.

    The graph holds the model as currently set: ``r`` / ``keep_ratio``
    (``encoder.set_merge``) and patch size (``encoder.set_patch_size``).
    It is traced at ``input_tdim`` frames in ``"pad"`` length mode (the
    model's own length mode and train/eval state are restored afterwards).
    The settings go into the file's metadata (key ``"fastast"``, JSON; see
    :func:`_onnx_settings`).

    Arguments
    ---------
    model : ASTClassifier
        Encoder + head, fp32 weights, on any device (exported on the CPU).
    path : str or os.PathLike
        ONNX file to write (weights inline: models below 2 GB).
    opset_version : int, optional
        ONNX opset; None takes the exporter's default (18 or later).
    example_batch : int
        Batch size of the tracing input (>= 2, so that the batch axis is
        not specialised to 1).

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> enc = ASTEncoder("tiny224", input_tdim=64, depth=1, r=8)
    >>> model = ASTClassifier(enc, ASTHead(192, 2)).eval()
    >>> path = export_onnx(model, getfixture("tmp_path") / "m.onnx")  # doctest: +SKIP
    """
    try:
        import onnx  # noqa: F401 -- the exporter needs it
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "export_onnx needs the packages onnx and onnxscript "
            "(pip install onnx onnxscript onnxruntime)"
        ) from error
    if example_batch < 2:
        raise ValueError(f"example_batch must be >= 2, got {example_batch}")
    encoder = _encoder_of(model)
    settings = _onnx_settings(model)
    param = next(model.parameters())
    if param.dtype != torch.float32:
        raise TypeError(
            f"export_onnx expects fp32 weights, got {param.dtype}; call model.float() first"
        )
    device, was_training, mode = param.device, model.training, encoder.length_mode
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(example_batch, encoder.input_tdim, encoder.input_fdim, generator=generator)
    batch = torch.export.Dim("batch", min=1)
    try:
        model.cpu().eval()
        encoder.length_mode = "pad"
        program = torch.onnx.export(
            model,
            (feats,),
            dynamo=True,
            input_names=[_INPUT_NAME],
            output_names=[_OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset_version,
            verbose=False,
        )
    finally:
        encoder.length_mode = mode
        model.to(device).train(was_training)
    program.model.metadata_props[_METADATA_KEY] = json.dumps(settings)
    program.save(os.fspath(path))
    return os.fspath(path)


def _session(path, providers=None, threads=None):
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ImportError(
            "running an ONNX model needs the package onnxruntime (pip install onnxruntime)"
        ) from error
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        os.fspath(path), options, providers=providers or ["CPUExecutionProvider"]
    )


class OnnxClassifier(nn.Module):
    """An exported ONNX model run by ``onnxruntime``, called like ``ASTClassifier``.

    ``forward(feats, lengths=None)`` pads or crops ``feats`` to the graph's
    ``input_tdim`` frames (the ``"pad"`` length mode of ``ASTEncoder``;
    ``lengths`` are unused there too) and returns the logits as a tensor on
    ``feats``'s device. The merge setting and patch size are those of the
    export (``settings``); they cannot be changed at run time.

    Arguments
    ---------
    path : str or os.PathLike
        File written by :func:`export_onnx` (or ``quantize.quantize_onnx``).
    providers : list of str, optional
        onnxruntime execution providers (default CPU).
    threads : int, optional
        Intra-op threads of the session (default: onnxruntime's).
    keepdim : bool
        Return ``[batch, 1, classes]`` (the shape ``ASTEncoder`` hands to
        ``ASTHead``; used by :func:`attach_onnx`) instead of
        ``[batch, classes]``.

    Example
    -------
    >>> model = OnnxClassifier(getfixture("tmp_path") / "m.onnx")  # doctest: +SKIP
    """

    def __init__(self, path, providers: Sequence[str] | None = None, threads=None, keepdim=False):
        super().__init__()
        self.path = os.fspath(path)
        self.session = _session(self.path, providers, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if _METADATA_KEY not in meta:
            raise ValueError(
                f"{self.path} has no '{_METADATA_KEY}' metadata: export it "
                "with fastast_plugin.inference.onnx.export_onnx"
            )
        self.settings = json.loads(meta[_METADATA_KEY])
        self.input_tdim = int(self.settings["input_tdim"])
        self.input_fdim = int(self.settings["input_fdim"])
        self.labels = self.settings.get("labels")
        self.keepdim = keepdim

    @property
    def length_mode(self):
        """Always ``"pad"``: the graph is fixed at ``input_tdim`` frames."""
        return "pad"

    @length_mode.setter
    def length_mode(self, value):
        if value != "pad":
            raise ValueError(
                f"an ONNX model runs at its exported input_tdim={self.input_tdim} "
                f"frames only (length_mode 'pad'), got {value!r}"
            )

    def _fixed(self, name):
        raise RuntimeError(
            f"{name} cannot change an exported ONNX model ({self.path}: "
            f"r={self.settings['r']}, keep_ratio={self.settings['keep_ratio']}, "
            f"patch_size={self.settings['patch_size']}); set it on the PyTorch "
            "model and export again"
        )

    def set_merge(self, r=0, keep_ratio=None):
        """Not possible: raises RuntimeError (the merge is part of the graph)."""
        self._fixed("set_merge")

    def set_patch_size(self, patch_size=None, stride=None):
        """Not possible unless it is the exported size (None also accepted)."""
        if patch_size is None or list(_pair(patch_size)) == self.settings["patch_size"]:
            return
        self._fixed("set_patch_size")

    def forward(self, feats, lengths=None):
        """Logits of features ``[batch, time, input_fdim]``."""
        if feats.dim() != 3 or feats.shape[2] != self.input_fdim:
            raise ValueError(
                f"{self.path} expects features [batch, time, {self.input_fdim}], "
                f"got {tuple(feats.shape)}"
            )
        frames = feats.shape[1]
        if frames > self.input_tdim:
            feats = feats[:, : self.input_tdim]
        elif frames < self.input_tdim:
            feats = F.pad(feats, (0, 0, 0, self.input_tdim - frames))
        inputs = feats.detach().float().cpu().contiguous().numpy()
        logits = self.session.run([_OUTPUT_NAME], {_INPUT_NAME: inputs})[0]
        logits = torch.from_numpy(logits).to(feats.device)
        return logits.unsqueeze(1) if self.keepdim else logits


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def attach_onnx(interface, path, providers=None, threads=None):
    """Make an ``AudioClassifier`` run an exported ONNX model.

    ``embedding_model`` becomes an :class:`OnnxClassifier` (returning
    ``[batch, 1, classes]``) and ``classifier`` an identity, so every
    ``classify_*`` / ``predict_*`` method runs onnxruntime; the features
    stay PyTorch's, padded to the graph's ``input_tdim`` (length mode
    ``"pad"``).

    Arguments
    ---------
    interface : AudioClassifier
        The interface to change in place.
    path : str or os.PathLike
        File written by :func:`export_onnx`.
    providers : list of str, optional
        onnxruntime execution providers.
    threads : int, optional
        Intra-op threads.

    Returns
    -------
    OnnxClassifier
        The module now used as ``embedding_model``.
    """
    model = OnnxClassifier(path, providers, threads, keepdim=True)
    labels = getattr(interface.hparams, "label_encoder", None)
    classes = model.settings.get("num_classes")
    if labels is not None and classes is not None and len(labels) != classes:
        raise ValueError(
            f"{os.fspath(path)} has {classes} outputs but the interface's "
            f"label_encoder has {len(labels)} labels"
        )
    interface.mods.embedding_model = model
    interface.mods.classifier = nn.Identity()
    interface.set_length_mode("pad")
    return model
