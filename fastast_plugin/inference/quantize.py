"""Dynamic int8 quantisation of the linear layers for CPU inference.

Two equivalent routes, both combining with token merging (the merge
itself stays in floating point; only the ``nn.Linear`` layers, qkv,
attention projection, MLP and head, which hold nearly all the FLOPs, run
in int8):

* :func:`quantize_linear_int8`: PyTorch's dynamic quantisation
  (``torch.ao.quantization.quantize_dynamic``, per-tensor int8 weights,
  activations quantised on the fly per batch), on a copy of the model;
* :func:`quantize_onnx`: ONNX Runtime's ``quantize_dynamic`` on a file
  written by ``onnx_export.export_onnx`` (MatMul weights to int8), keeping
  the file's settings metadata so that ``OnnxClassifier`` runs it.

Dynamic quantisation: Jacob et al., "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018.

Authors
 * fastast developers 2026
"""

import copy
import logging
import os
import warnings

import torch
from torch import nn

__all__ = ["quantize_linear_int8", "quantize_onnx"]


def quantize_linear_int8(model, inplace=False):
    """A copy of ``model`` whose ``nn.Linear`` layers run in dynamic int8.

    Arguments
    ---------
    model : nn.Module
        Any model (an ``ASTClassifier``, an ``ASTEncoder``), on the CPU, fp32.
    inplace : bool
        Quantise ``model`` itself instead of a deep copy.

    Returns
    -------
    nn.Module
        The quantised model, in eval mode; merging (``encoder.set_merge``)
        and patch sizes work on it as on the original.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> model = ASTClassifier(ASTEncoder("tiny224", input_tdim=64, depth=1), ASTHead(192, 2)).eval()
    >>> int8 = quantize_linear_int8(model)
    >>> _count_quantized(int8), _count_quantized(model)
    (5, 0)
    >>> int8.encoder.r = 8
    >>> int8(torch.randn(2, 64, 128)).shape
    torch.Size([2, 2])
    """
    param = next(model.parameters(), None)
    if param is not None and param.device.type != "cpu":
        raise ValueError(
            f"dynamic int8 quantisation runs on the CPU; the model is on "
            f"{param.device}: call model.cpu() first"
        )
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; quantize_dynamic stays.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def _count_quantized(model):
    """Number of dynamically quantised linear layers in ``model``.

    Arguments
    ---------
    model : nn.Module

    Returns
    -------
    int
    """
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return sum(isinstance(m, DynamicLinear) for m in model.modules())


def quantize_onnx(source, target, per_channel=False):
    """ONNX Runtime dynamic int8 quantisation of an exported model file.

    Arguments
    ---------
    source : str or os.PathLike
        File written by ``onnx_export.export_onnx``.
    target : str or os.PathLike
        Quantised file to write (its ``fastast`` settings metadata kept).
    per_channel : bool
        Per-output-channel weight scales (more accurate, a little slower).

    Returns
    -------
    str
        ``target``.
    """
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ImportError(
            "quantize_onnx needs the packages onnx and onnxruntime (pip install onnx onnxruntime)"
        ) from error
    source, target = os.fspath(source), os.fspath(target)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"ONNX model not found: {source}")
    root = logging.getLogger()
    level = root.level
    # The quantiser logs every tensor it leaves in fp32 (shape arithmetic).
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(source, target, per_channel=per_channel, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    # Carry the settings metadata over (the quantiser writes a new model).
    original = {p.key: p.value for p in onnx.load(source, load_external_data=False).metadata_props}
    quantized = onnx.load(target)
    present = {p.key for p in quantized.metadata_props}
    for key, value in original.items():
        if key not in present:
            quantized.metadata_props.add(key=key, value=value)
    onnx.save(quantized, target)
    return target
