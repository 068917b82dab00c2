"""Load AST checkpoints of every common format into fastast encoders.

Four checkpoint families are recognised from their tensors, not from file
names:

* ``"ast"``: audio checkpoints in the timm/AST layout, i.e. a 1-channel patch
  kernel. This covers the original AST ``.pth`` files (state dicts of
  ``torch.nn.DataParallel(ASTModel)``: ``module.v.*``, fused ``qkv``,
  ``module.mlp_head.{0,1}``, unused DeiT ``head``/``head_dist``) and the
  state dicts of this plugin's own ``ASTEncoder`` / ``ASTClassifier``.
* ``"hf"``: Hugging Face ``ASTForAudioClassification`` (or ``ASTModel``)
  folders, ``config.json`` plus ``model.safetensors`` or
  ``pytorch_model.bin``, with split query/key/value projections, under the
  hub's names (``encoder.layer.{i}.attention.attention.query``) or the names
  transformers 5 uses in memory (``layers.{i}.attention.q_proj``).
* ``"timm"``: ImageNet DeiT/ViT checkpoints (3-channel patch kernel, square
  positional grid), used for initialisation as AST does: the kernel is
  summed over RGB, the positional embedding is cut or interpolated to the
  audio grid, and the classification head is new.
* ``"flexiast"``: FlexiAST checkpoints (state dicts of
  ``DataParallel(FlexiASTModel)``): the stored kernel
  ``module.patch_embed.proj.*`` (16x16 in the releases), the positional
  embedding ``module.pos_embed.pos_embed`` on the non-overlapping base grid
  (8 x T/16), the backbone under ``module.v.*`` (whose own, unused
  ``v.patch_embed`` / ``v.pos_embed`` are dropped) and ``module.mlp_head``.
  They load into a flexible encoder (``flexible="both"`` unless overridden).

Each family has a converter ``(state_dict) -> state_dict`` to this plugin's
names (``encoder.*``, ``head.norm.*``, ``head.linear.*``); unknown keys pass
through unchanged so that the strict load names them. The positional
embedding is then fitted to the target grid by ``adapt_pos_embed`` and the
weights are loaded strictly. A flexible encoder (``ASTEncoder(flexible=...)``)
can also be initialised from a checkpoint with another kernel size or other
strides (FlexiAST's initialisation from a fixed-patch AST): the kernel is
PI-resized to the encoder's base size and the positional embedding
resampled to its base grid (``fastast_plugin.flexi``).

Authors
 * fastast developers 2026
"""

import inspect
import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from speechbrain.utils.logger import get_logger

from fastast_plugin.ast import (
    MODEL_SIZES,
    ASTClassifier,
    ASTEncoder,
    ASTHead,
    grid_shape,
)
from fastast_plugin.flexi import (
    grid_to_pos_embed,
    pi_resize,
    pos_embed_to_grid,
    resample_pos_embed,
)

__all__ = [
    "Checkpoint",
    "adapt_pos_embed",
    "check_state_dict",
    "convert_ast_original",
    "convert_flexiast",
    "convert_hf_ast",
    "convert_timm_vit",
    "detect_format",
    "from_pretrained",
    "load_encoder_weights",
    "load_state_dict_file",
    "read_checkpoint",
]

logger = get_logger(__name__)

StateDict = Dict[str, torch.Tensor]

# Settings AST checkpoints do not record; AST's defaults.
DEFAULT_FDIM = 128
DEFAULT_TDIM = 1024
DEFAULT_STRIDES = (10, 10)
DEFAULT_N_CLASSES = 527
AST_HEAD_EPS = 1e-5  # torch's LayerNorm default, AST's mlp_head
TIMM_EPS = 1e-6  # timm ViT/DeiT blocks
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_CONFIG_FILE = "config.json"
# audioset_10_10_0.4593.pth, speechcommands_10_10_0.9812.pth, ...
AST_FILE_NAME = re.compile(r"_(\d+)_(\d+)_\d+\.\d+\.pth$")
FLEXIAST_POS_KEYS = ("module.pos_embed.pos_embed", "pos_embed.pos_embed")


class Checkpoint(NamedTuple):
    """A checkpoint converted to this plugin's names, with its architecture.

    ``state_dict`` holds ``encoder.*`` and, for trained classifiers,
    ``head.norm.*`` / ``head.linear.*`` tensors (plus any key no converter
    knows, left for the strict load to report). ``arch`` holds the
    ``ASTEncoder`` arguments the tensors imply; ``grid`` is the
    (frequency, time) patch grid of the positional embedding; ``strides``
    is the (fstride, tstride) that grid was trained with, or None for
    ImageNet checkpoints, which fit any stride. ``labels`` are the class
    names of a Hugging Face config, else None. Built by ``read_checkpoint``.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "audioset_10_10_0.4593.pth")
    >>> torch.save(ASTEncoder("tiny224", depth=1, input_tdim=1024).state_dict(), path)
    >>> ckpt = read_checkpoint(path)
    >>> ckpt.grid, ckpt.strides, ckpt.arch["num_heads"]
    ((12, 101), (10, 10), 3)
    """

    path: str
    family: str
    state_dict: StateDict
    arch: dict
    grid: Tuple[int, int]
    strides: Optional[Tuple[int, int]]
    head_eps: float
    labels: Optional[list]


# ----------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------
def load_state_dict_file(path):
    """Read a tensor state dict from a ``.safetensors`` or torch file.

    Torch files are read with ``weights_only=True``; the usual nesting
    ``{"state_dict": ...}`` / ``{"model": ...}`` is unwrapped.

    Arguments
    ---------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict
        Tensor names to tensors, on the CPU.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "weights.pth")
    >>> torch.save({"model": {"w": torch.ones(2)}}, path)
    >>> load_state_dict_file(path)
    {'w': tensor([1., 1.])}
    """
    path = _existing_path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as err:
            raise ValueError(
                f"{path} is not a readable safetensors file: {err}"
            ) from err
    return _as_tensor_dict(_torch_load(path), path)


def _existing_path(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Checkpoint not found: {path} (expected a local file or folder; "
            "download hub models first, e.g. huggingface_hub.snapshot_download)"
        )
    return path


def _torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds pickled objects other than tensors, so "
            "torch.load(weights_only=True) refuses it; expected a state dict "
            "of tensors (re-save it with torch.save(model.state_dict(), path)). "
            f"torch said: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # torch raises many types for a non-checkpoint
        raise ValueError(
            f"{path} is not a readable torch checkpoint "
            f"({type(err).__name__}: {err}); expected a state dict of tensors"
        ) from err


def _as_tensor_dict(obj, path):
    while isinstance(obj, Mapping):
        nested = [k for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(
            f"{path} holds {type(obj).__name__} {_short(obj)}, expected a "
            "non-empty state dict of tensors"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path} is not a state dict of tensors: key {key!r} holds "
                f"{type(value).__name__} {_short(value)}, expected a tensor"
            )
    return dict(obj)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_source(source):
    """Return (raw state dict, HF config or None, weights path)."""
    path = _existing_path(source)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        found = [path / name for name in HF_WEIGHT_FILES if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(
                f"{path} is a folder without weights: expected one of "
                f"{', '.join(HF_WEIGHT_FILES)} (with {HF_CONFIG_FILE})"
            )
        path = found[0]
    config_path = folder / HF_CONFIG_FILE
    config = _read_json(config_path) if config_path.is_file() else None
    return load_state_dict_file(path), config, path


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable JSON config: {err}") from err


# ----------------------------------------------------------------------
# Format detection and converters
# ----------------------------------------------------------------------
def detect_format(state_dict, source="state dict"):
    """Tell which checkpoint family a state dict belongs to.

    Rules: any key under ``audio_spectrogram_transformer.`` or
    ``embeddings.patch_embeddings`` means Hugging Face (``"hf"``); a
    ``pos_embed.pos_embed`` tensor (FlexiAST's ``FlexiPosEmbed``, under an
    optional ``module.``) means FlexiAST (``"flexiast"``); otherwise the
    patch kernel (``patch_embed.proj.weight`` under an optional
    ``module.``, ``v.`` or ``encoder.`` prefix) decides: 1 input channel is
    an audio AST checkpoint (``"ast"``), 3 channels an ImageNet DeiT/ViT
    (``"timm"``).

    Arguments
    ---------
    state_dict : dict
        Raw checkpoint tensors.
    source : str
        Where they come from, for error messages.

    Returns
    -------
    str
        ``"ast"``, ``"hf"``, ``"timm"`` or ``"flexiast"``.

    Example
    -------
    >>> detect_format({"module.v.patch_embed.proj.weight": torch.zeros(8, 1, 16, 16)})
    'ast'
    >>> detect_format({"patch_embed.proj.weight": torch.zeros(8, 3, 16, 16)})
    'timm'
    """
    if any(_is_hf_key(key) for key in state_dict):
        return "hf"
    if any(key in state_dict for key in FLEXIAST_POS_KEYS):
        return "flexiast"
    kernel = _patch_kernel(state_dict)
    if kernel is not None and kernel.dim() == 4 and kernel.shape[1] in (1, 3):
        return "ast" if kernel.shape[1] == 1 else "timm"
    found = "none" if kernel is None else f"shape {tuple(kernel.shape)}"
    raise ValueError(
        f"Cannot tell the checkpoint format of {source}: expected an original "
        "AST/fastast state dict (1-channel patch_embed.proj.weight), a Hugging "
        "Face AST model (audio_spectrogram_transformer.*), a FlexiAST model "
        "(pos_embed.pos_embed) or a timm DeiT/ViT (3-channel "
        f"patch_embed.proj.weight); patch kernel: {found}; first "
        f"keys: {sorted(state_dict)[:5]}"
    )


def _is_hf_key(key):
    return key.startswith("audio_spectrogram_transformer.") or key.startswith(
        "embeddings.patch_embeddings."
    )


def _patch_kernel(state_dict):
    for prefix in ("module.v.", "v.", "encoder.", "module.", ""):
        kernel = state_dict.get(prefix + "patch_embed.proj.weight")
        if kernel is not None:
            return kernel
    return None


def convert_ast_original(state_dict):
    """Rename an original AST (or fastast) state dict to this plugin's names.

    ``module.`` (DataParallel) is stripped, ``v.`` becomes ``encoder.``,
    ``mlp_head.0``/``mlp_head.1`` become ``head.norm``/``head.linear``, the
    unused DeiT heads ``v.head*`` are dropped, and bare encoder keys get
    ``encoder.``. The fused ``qkv`` layout is already ours.

    Arguments
    ---------
    state_dict : dict
        Original AST, ``ASTEncoder`` or ``ASTClassifier`` tensors.

    Returns
    -------
    dict
        Tensors under ``encoder.*`` and ``head.*``.

    Example
    -------
    >>> sd = {"module.v.norm.weight": torch.ones(2),
    ...       "module.v.head.weight": torch.ones(5, 2),
    ...       "module.mlp_head.1.bias": torch.zeros(5)}
    >>> sorted(convert_ast_original(sd))
    ['encoder.norm.weight', 'head.linear.bias']
    """
    out = {}
    for key, value in state_dict.items():
        key = _ast_key(key.removeprefix("module."))
        if key is not None:
            out[key] = value
    return out


_AST_PREFIXES = (
    ("v.", "encoder."),
    ("mlp_head.0.", "head.norm."),
    ("mlp_head.1.", "head.linear."),
)


def _ast_key(key):
    """Map one (module.-stripped) original AST key; None drops it."""
    for old, new in _AST_PREFIXES:
        if key.startswith(old):
            key = new + key[len(old) :]
            break
    if re.match(r"encoder\.head(_dist)?\.(weight|bias)$", key):
        return None  # DeiT's ImageNet heads, unused by AST
    if key.startswith(("encoder.", "head.")):
        return key
    return "encoder." + key


_HF_RENAMES = [
    (r"embeddings\.cls_token$", "cls_token"),
    (r"embeddings\.distillation_token$", "dist_token"),
    (r"embeddings\.position_embeddings$", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"layers\.(\d+)\.attention\.o_proj\.", r"blocks.\1.attn.proj."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"layers\.(\d+)\.mlp\.(fc[12])\.", r"blocks.\1.mlp.\2."),
    (r"layernorm\.", "norm."),
]
_HF_QKV = re.compile(
    r"(?:encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)"
    r"|layers\.(\d+)\.attention\.([qkv])_proj)\.(weight|bias)$"
)
_HF_HEAD = {"classifier.layernorm.": "head.norm.", "classifier.dense.": "head.linear."}


def convert_hf_ast(state_dict):
    """Rename a Hugging Face AST state dict to this plugin's names.

    Accepts the hub's on-disk names and transformers 5's in-memory names,
    with or without the ``audio_spectrogram_transformer.`` prefix (a bare
    ``ASTModel``). Query, key and value are stacked, in that order, into
    the fused ``qkv`` projection.

    Arguments
    ---------
    state_dict : dict
        Hugging Face tensors.

    Returns
    -------
    dict
        Tensors under ``encoder.*`` and ``head.*``.

    Example
    -------
    >>> p = "audio_spectrogram_transformer.encoder.layer.0.attention.attention."
    >>> sd = {p + name + ".weight": torch.full((2, 2), float(i))
    ...       for i, name in enumerate(["query", "key", "value"])}
    >>> convert_hf_ast(sd)["encoder.blocks.0.attn.qkv.weight"][:, 0]
    tensor([0., 0., 1., 1., 2., 2.])
    """
    out, qkv = {}, {}
    for key, value in state_dict.items():
        key = key.removeprefix("audio_spectrogram_transformer.")
        match = _HF_QKV.match(key)
        if match:
            layer = match.group(1) or match.group(3)
            part = (match.group(2) or match.group(4))[0]  # q, k or v
            qkv.setdefault((layer, match.group(5)), {})[part] = (key, value)
        else:
            out[_hf_key(key)] = value
    for (layer, param), parts in qkv.items():
        out.update(_fuse_qkv(layer, param, parts))
    return out


def _hf_key(key):
    for old, new in _HF_HEAD.items():
        if key.startswith(old):
            return new + key[len(old) :]
    for pattern, new in _HF_RENAMES:
        renamed, count = re.subn("^" + pattern, new, key)
        if count:
            return "encoder." + renamed
    return key  # unknown: left for the strict load to report


def _fuse_qkv(layer, param, parts):
    if set(parts) != set("qkv"):  # incomplete: report the originals
        return {key: value for key, value in parts.values()}
    fused = torch.cat([parts[p][1] for p in "qkv"], dim=0)
    return {f"encoder.blocks.{layer}.attn.qkv.{param}": fused}


def convert_timm_vit(state_dict):
    """Adapt a timm ImageNet DeiT/ViT state dict to an audio encoder.

    The patch kernel is summed over its 3 RGB input channels, as AST does;
    the ImageNet heads ``head``/``head_dist`` are dropped; every other key
    gets ``encoder.``. The positional embedding keeps its ImageNet grid
    (see ``adapt_pos_embed``).

    Arguments
    ---------
    state_dict : dict
        timm tensors (``patch_embed.proj.weight`` of shape [D, 3, p, p]).

    Returns
    -------
    dict
        Tensors under ``encoder.*``.

    Example
    -------
    >>> sd = {"patch_embed.proj.weight": torch.ones(4, 3, 16, 16),
    ...       "head.weight": torch.zeros(1000, 4)}
    >>> out = convert_timm_vit(sd)
    >>> list(out), out["encoder.patch_embed.proj.weight"].shape
    (['encoder.patch_embed.proj.weight'], torch.Size([4, 1, 16, 16]))
    """
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if re.match(r"head(_dist)?\.(weight|bias)$", key):
            continue
        if key == "patch_embed.proj.weight" and value.dim() == 4:
            value = value.sum(dim=1, keepdim=True)
        out["encoder." + key] = value
    return out


def convert_flexiast(state_dict):
    """Rename a FlexiAST state dict to this plugin's names.

    The stored kernel ``patch_embed.proj.*`` and positional embedding
    ``pos_embed.pos_embed`` become the encoder's; the backbone ``v.*`` and
    ``mlp_head`` are renamed as in :func:`convert_ast_original`; the
    backbone's own ``v.patch_embed.*`` and ``v.pos_embed``, unused by
    FlexiAST's forward, and its ImageNet heads are dropped.

    Arguments
    ---------
    state_dict : dict
        FlexiAST tensors, with or without the DataParallel ``module.``.

    Returns
    -------
    dict
        Tensors under ``encoder.*`` and ``head.*``.

    Example
    -------
    >>> sd = {"module.pos_embed.pos_embed": torch.zeros(1, 1 + 8 * 64, 4),
    ...       "module.patch_embed.proj.weight": torch.zeros(4, 1, 16, 16),
    ...       "module.v.pos_embed": torch.zeros(1, 197, 4),
    ...       "module.v.patch_embed.proj.weight": torch.zeros(4, 1, 16, 16),
    ...       "module.v.cls_token": torch.zeros(1, 1, 4)}
    >>> sorted(convert_flexiast(sd))
    ['encoder.cls_token', 'encoder.patch_embed.proj.weight', 'encoder.pos_embed']
    """
    kept = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key == "v.pos_embed" or key.startswith("v.patch_embed."):
            continue  # the initialiser's embeddings, unused by FlexiAST
        kept["pos_embed" if key == "pos_embed.pos_embed" else key] = value
    return convert_ast_original(kept)


# ----------------------------------------------------------------------
# Positional embedding
# ----------------------------------------------------------------------
def adapt_pos_embed(pos_embed, old_grid, new_grid, num_prefix_tokens=2):
    """Fit a positional embedding to another patch grid, as AST does.

    The patch part is laid out as a (frequency, time) image and fitted one
    axis at a time, time first: an axis that shrinks (or keeps its size)
    keeps its centre, ``[old // 2 - new // 2, old // 2 - new // 2 + new)``;
    an axis that grows is interpolated bilinearly (``align_corners=False``,
    in float32). This is both AST's ImageNet rule (24x24 DeiT grid) and its
    AudioSet rule (12x101 grid; AST interpolates an unchanged axis, which
    is the identity). Prefix (cls, dist) embeddings are kept. (For another
    patch geometry, i.e. flexible encoders, FlexiAST's rule
    ``fastast_plugin.flexi.resample_pos_embed`` applies instead.)

    Arguments
    ---------
    pos_embed : torch.Tensor
        ``[1, num_prefix_tokens + old_f * old_t, dim]``.
    old_grid : tuple of int
        ``(f, t)`` grid of ``pos_embed``.
    new_grid : tuple of int
        Target ``(f, t)`` grid.
    num_prefix_tokens : int
        Leading non-patch tokens.

    Returns
    -------
    torch.Tensor
        ``[1, num_prefix_tokens + new_f * new_t, dim]``, same dtype.

    Example
    -------
    >>> pos = torch.randn(1, 2 + 12 * 101, 8)
    >>> adapt_pos_embed(pos, (12, 101), (12, 12)).shape
    torch.Size([1, 146, 8])
    """
    new_f, new_t = new_grid
    prefix, grid = pos_embed_to_grid(pos_embed, old_grid, num_prefix_tokens)
    grid = _fit_axis(grid, new_t, axis=3)
    grid = _fit_axis(grid, new_f, axis=2)
    return grid_to_pos_embed(prefix, grid, pos_embed.dtype)


def _fit_axis(grid, size, axis):
    old = grid.shape[axis]
    if size <= old:
        return grid.narrow(axis, old // 2 - size // 2, size)
    shape = list(grid.shape[2:])
    shape[axis - 2] = size
    return F.interpolate(grid, size=tuple(shape), mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------
# Architecture inference
# ----------------------------------------------------------------------
def frames_for_grid(t_dim, tstride, patch_size=16):
    """Input frames a checkpoint was most likely trained with, from its grid.

    Every length from ``(t_dim - 1) * tstride + patch_size`` to ``tstride - 1``
    frames more gives the same grid; AST's recipes use multiples of 16
    (128, 512, 1024), so the first multiple of 16 in that range is chosen,
    else the smallest length.

    Arguments
    ---------
    t_dim : int
        Patch columns of the grid.
    tstride : int
        Time stride.
    patch_size : int
        Patch side.

    Returns
    -------
    int
        Number of frames.

    Example
    -------
    >>> frames_for_grid(101, 10), frames_for_grid(12, 10), frames_for_grid(85, 12)
    (1024, 128, 1024)
    """
    smallest = (t_dim - 1) * tstride + patch_size
    for frames in range(smallest, smallest + tstride):
        if frames % 16 == 0:
            return frames
    return smallest


def read_checkpoint(source, fstride=None, tstride=None, input_fdim=None):
    """Read, recognise and convert a checkpoint of any supported family.

    Original AST files do not record their strides or mel bins: the
    strides come from a file name ``<name>_{f}_{t}_{score}.pth`` when it
    has one (``audioset_10_10_0.4593.pth``), else from ``fstride`` /
    ``tstride``, else AST's 10/10, or the patch size (non-overlapping, as
    FlexiAST's fixed-patch models) when 10/10 does not fit the positional
    embedding; mel bins from ``input_fdim``, else 128. The
    time grid then follows from the positional embedding, and
    ``arch["input_tdim"]`` is given by ``frames_for_grid`` (1024 for
    AudioSet's 101 columns, 128 for SpeechCommands' 12). Hugging Face folders take
    everything from ``config.json``; ImageNet checkpoints default to AST's
    1024 frames and 10/10 strides, and fit any. FlexiAST checkpoints have
    strides equal to their kernel and ``arch["flexible"] == "both"``.

    Arguments
    ---------
    source : str or os.PathLike
        A ``.pth``/``.bin``/``.safetensors`` file or a Hugging Face folder.
    fstride : int, optional
        Frequency stride of an original AST file without strides in its name.
    tstride : int, optional
        Time stride of such a file.
    input_fdim : int, optional
        Mel bins of such a file.

    Returns
    -------
    Checkpoint
        Converted tensors and inferred architecture.

    Example
    -------
    >>> enc = ASTEncoder("tiny224", depth=1, input_tdim=128)
    >>> path = str(getfixture("tmpdir") / "enc.pth")
    >>> torch.save(enc.state_dict(), path)
    >>> ckpt = read_checkpoint(path)
    >>> ckpt.family, ckpt.grid, ckpt.arch["depth"], ckpt.arch["input_tdim"]
    ('ast', (12, 12), 1, 128)
    """
    hint = None
    if fstride or tstride:
        hint = fstride or DEFAULT_STRIDES[0], tstride or DEFAULT_STRIDES[1]
    return _read_checkpoint(source, hint, input_fdim)


def _read_checkpoint(source, strides, input_fdim, guesses=()):
    """``read_checkpoint`` with a strides hint (or None) and extra guesses."""
    raw, config, path = _read_source(source)
    family = detect_format(raw, path)
    if family == "hf":
        return _describe_hf(convert_hf_ast(raw), config, path)
    if family == "timm":
        return _describe_timm(convert_timm_vit(raw), path)
    input_fdim = input_fdim or DEFAULT_FDIM
    if family == "flexiast":
        return _describe_flexiast(convert_flexiast(raw), path, input_fdim)
    state = convert_ast_original(raw)
    match = AST_FILE_NAME.search(Path(path).name)
    if match:
        strides = int(match.group(1)), int(match.group(2))
    elif strides is None:
        strides = _guess_strides(state, path, input_fdim, guesses)
    return _describe_ast(state, path, strides, input_fdim)


def _guess_strides(state_dict, path, input_fdim, guesses):
    """AST's 10/10, else non-overlapping, else ``guesses``: the first that fits."""
    arch = _shape_arch(state_dict, path)
    patch = arch["patch_size"]
    patches = state_dict["encoder.pos_embed"].shape[1] - arch["num_prefix_tokens"]
    for strides in (DEFAULT_STRIDES, (patch, patch), *guesses):
        f_dim = (input_fdim - patch) // strides[0] + 1
        if f_dim >= 1 and patches % f_dim == 0:
            if strides != DEFAULT_STRIDES:
                logger.info(
                    "%s: strides not in the file name; %d patches fit "
                    "fstride/tstride %d/%d (pass fstride/tstride if not)",
                    path, patches, *strides,
                )
            return tuple(strides)
    return DEFAULT_STRIDES  # _audio_grid names the problem


def _tensor(state_dict, key, path):
    if key not in state_dict:
        raise ValueError(
            f"{path} has no tensor {key!r} (after conversion to fastast names)"
        )
    return state_dict[key]


def _shape_arch(state_dict, path):
    """ASTEncoder arguments implied by the tensor shapes."""
    pos = _tensor(state_dict, "encoder.pos_embed", path)
    kernel = _tensor(state_dict, "encoder.patch_embed.proj.weight", path)
    fc1 = _tensor(state_dict, "encoder.blocks.0.mlp.fc1.weight", path)
    embed_dim = pos.shape[-1]
    if kernel.shape[-1] != kernel.shape[-2]:
        raise ValueError(f"{path}: patch kernel {tuple(kernel.shape)} is not square")
    blocks = {
        int(k.split(".")[2]) for k in state_dict if k.startswith("encoder.blocks.")
    }
    return {
        "embed_dim": embed_dim,
        "depth": max(blocks) + 1,
        "num_heads": _num_heads(embed_dim),
        "mlp_ratio": fc1.shape[0] / embed_dim,
        "qkv_bias": "encoder.blocks.0.attn.qkv.bias" in state_dict,
        "patch_size": kernel.shape[-1],
        "num_prefix_tokens": 2 if "encoder.dist_token" in state_dict else 1,
    }


def _num_heads(embed_dim):
    """ViT/DeiT use 64-dimensional heads: 192 -> 3, 384 -> 6, 768 -> 12.

    Shapes do not record the head count; None when the rule cannot apply.
    """
    return embed_dim // 64 if embed_dim % 64 == 0 else None


def _audio_grid(state_dict, arch, fstride, input_fdim, path):
    """(f, t) grid of an audio positional embedding with known fstride."""
    f_dim = (input_fdim - arch["patch_size"]) // fstride + 1
    num_tokens = _tensor(state_dict, "encoder.pos_embed", path).shape[1]
    patches = num_tokens - arch["num_prefix_tokens"]
    if f_dim < 1 or patches % f_dim:
        raise ValueError(
            f"{path}: pos_embed holds {patches} patches, not a multiple of "
            f"f_dim={f_dim} ({input_fdim} mel bins, fstride={fstride}); pass the "
            "fstride/tstride/input_fdim the checkpoint was trained with"
        )
    return f_dim, patches // f_dim


def _describe_ast(state_dict, path, strides, input_fdim):
    arch = _shape_arch(state_dict, path)
    grid = _audio_grid(state_dict, arch, strides[0], input_fdim, path)
    arch.update(
        input_fdim=input_fdim,
        input_tdim=frames_for_grid(grid[1], strides[1], arch["patch_size"]),
        fstride=strides[0],
        tstride=strides[1],
        layer_norm_eps=TIMM_EPS,
    )
    return Checkpoint(
        str(path), "ast", state_dict, arch, grid, strides, AST_HEAD_EPS, None
    )


def _describe_flexiast(state_dict, path, input_fdim):
    """FlexiAST: non-overlapping base patches (stride = kernel), flexible."""
    patch = _shape_arch(state_dict, path)["patch_size"]
    ckpt = _describe_ast(state_dict, path, (patch, patch), input_fdim)
    ckpt.arch["flexible"] = "both"
    return ckpt._replace(family="flexiast")


def _describe_timm(state_dict, path):
    arch = _shape_arch(state_dict, path)
    patches = state_dict["encoder.pos_embed"].shape[1] - arch["num_prefix_tokens"]
    side = int(round(patches**0.5))
    if side * side != patches:
        raise ValueError(
            f"{path}: ImageNet pos_embed holds {patches} patches after "
            f"{arch['num_prefix_tokens']} prefix tokens, expected a square grid"
        )
    arch.update(
        input_fdim=DEFAULT_FDIM,
        input_tdim=DEFAULT_TDIM,
        fstride=DEFAULT_STRIDES[0],
        tstride=DEFAULT_STRIDES[1],
        layer_norm_eps=TIMM_EPS,
    )
    return Checkpoint(
        str(path), "timm", state_dict, arch, (side, side), None, AST_HEAD_EPS, None
    )


def _describe_hf(state_dict, config, path):
    if config is None:
        raise FileNotFoundError(
            f"{path} holds Hugging Face AST weights but {Path(path).parent} has "
            f"no {HF_CONFIG_FILE}; expected a folder as written by save_pretrained"
        )
    arch = _hf_arch(config, path)
    strides = arch["fstride"], arch["tstride"]
    grid = _audio_grid(state_dict, arch, strides[0], arch["input_fdim"], path)
    expected_t = (arch["input_tdim"] - arch["patch_size"]) // strides[1] + 1
    if grid[1] != expected_t:
        arch["input_tdim"] = frames_for_grid(grid[1], strides[1], arch["patch_size"])
        logger.warning(
            "%s: max_length in %s gives %d time patches but pos_embed has %d; "
            "using input_tdim=%d",
            path, HF_CONFIG_FILE, expected_t, grid[1], arch["input_tdim"],
        )
    labels = _hf_labels(config)
    eps = arch["layer_norm_eps"]
    return Checkpoint(str(path), "hf", state_dict, arch, grid, strides, eps, labels)


def _hf_arch(config, path):
    """ASTEncoder arguments from an ASTConfig dict (ASTConfig defaults)."""
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(
            f"{path}: hidden_act={config['hidden_act']!r} in {HF_CONFIG_FILE}, "
            "but ASTEncoder implements 'gelu' only"
        )
    hidden = config.get("hidden_size", 768)
    return {
        "embed_dim": hidden,
        "depth": config.get("num_hidden_layers", 12),
        "num_heads": config.get("num_attention_heads", 12),
        "mlp_ratio": config.get("intermediate_size", 3072) / hidden,
        "qkv_bias": config.get("qkv_bias", True),
        "patch_size": config.get("patch_size", 16),
        "num_prefix_tokens": 2,
        "input_fdim": config.get("num_mel_bins", DEFAULT_FDIM),
        "input_tdim": config.get("max_length", DEFAULT_TDIM),
        "fstride": config.get("frequency_stride", 10),
        "tstride": config.get("time_stride", 10),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
    }


def _hf_labels(config):
    id2label = config.get("id2label")
    if not id2label:
        return None
    return [id2label[key] for key in sorted(id2label, key=int)]


# ----------------------------------------------------------------------
# Strict loading
# ----------------------------------------------------------------------
def check_state_dict(state_dict, module, source="state dict"):
    """Compare a converted state dict with a module's; raise on any difference.

    Arguments
    ---------
    state_dict : dict
        Tensors named as in ``module.state_dict()``.
    module : torch.nn.Module
        The module to be loaded.
    source : str
        Where the tensors come from (a file path), for the message.

    Raises
    ------
    ValueError
        One error listing missing keys, unexpected keys and shape
        mismatches (``name: checkpoint (a, b) vs model (c, d)``).

    Example
    -------
    >>> check_state_dict({"weight": torch.zeros(2, 3)}, torch.nn.Linear(3, 2), "x.pth")
    Traceback (most recent call last):
    ...
    ValueError: Cannot load x.pth into Linear:
      missing keys: bias
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} "
        f"vs model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if state_dict[key].shape != expected[key].shape
    ]
    problems = [
        f"  {title}: {', '.join(items)}"
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        name = type(module).__name__
        raise ValueError(f"Cannot load {source} into {name}:\n" + "\n".join(problems))


def _load_strict(module, state_dict, source):
    check_state_dict(state_dict, module, source)
    module.load_state_dict(state_dict, strict=True)


KERNEL_KEY = "encoder.patch_embed.proj.weight"


def _fit_to_encoder(ckpt, encoder):
    """Checkpoint tensors fitted to ``encoder``'s base kernel and base grid.

    Same patch geometry (kernel and strides) as the checkpoint, or an
    ImageNet checkpoint: the positional embedding follows AST's rule
    (``adapt_pos_embed``). Another geometry, for flexible encoders only
    (FlexiAST's initialisation): the kernel is PI-resized, and the
    positional embedding is first fitted to the input length with AST's
    rule at the checkpoint's geometry, then resampled to the encoder's
    base grid (``resample_pos_embed``).
    """
    embed = encoder.patch_embed
    strides, kernel = tuple(embed.base_stride), tuple(embed.base_patch_size)
    state = dict(ckpt.state_dict)
    ckpt_kernel = tuple(state[KERNEL_KEY].shape[-2:]) if KERNEL_KEY in state else kernel
    if encoder.flexible == "none":
        _check_same_geometry(ckpt, strides, kernel, ckpt_kernel)
    if ckpt_kernel != kernel:
        logger.info(
            "%s: PI-resizing the patch kernel %s to %s", ckpt.path, ckpt_kernel, kernel
        )
        state[KERNEL_KEY] = pi_resize(state[KERNEL_KEY], kernel)
    if "encoder.pos_embed" in state:
        same = ckpt.strides is None or (tuple(ckpt.strides), ckpt_kernel) == (
            strides,
            kernel,
        )
        fit = _fit_pos_embed if same else _resample_pos_embed
        state["encoder.pos_embed"] = fit(ckpt, encoder, ckpt_kernel)
    return state


def _check_same_geometry(ckpt, strides, kernel, ckpt_kernel):
    if ckpt.strides is not None and strides != tuple(ckpt.strides):
        raise ValueError(
            f"{ckpt.path} was trained with fstride/tstride "
            f"{ckpt.strides[0]}/{ckpt.strides[1]}, got {strides[0]}/{strides[1]}. "
            "A trained AST positional embedding only fits the strides it was "
            "trained with (AST changes strides only from ImageNet weights); "
            "use a checkpoint trained at the strides you want, or a flexible "
            "encoder (flexible='both'), which resamples it"
        )
    if ckpt_kernel != kernel:
        raise ValueError(
            f"{ckpt.path} has a {ckpt_kernel[0]}x{ckpt_kernel[1]} patch kernel but "
            f"the encoder's patch_size is {kernel[0]}x{kernel[1]}; build the "
            f"encoder with patch_size={ckpt_kernel[0]}, or with flexible='both' "
            "to PI-resize the kernel"
        )


def _fit_pos_embed(ckpt, encoder, ckpt_kernel):
    """AST's rule: same geometry, another input length."""
    pos, grid = ckpt.state_dict["encoder.pos_embed"], tuple(encoder.base_grid_size)
    if grid == tuple(ckpt.grid):
        return pos
    logger.info("%s: adapting pos_embed from grid %s to %s", ckpt.path, ckpt.grid, grid)
    return adapt_pos_embed(pos, ckpt.grid, grid, ckpt.arch["num_prefix_tokens"])


def _resample_pos_embed(ckpt, encoder, ckpt_kernel):
    """FlexiAST's rule: another patch geometry, resample to the base grid."""
    prefix = ckpt.arch["num_prefix_tokens"]
    pos = ckpt.state_dict["encoder.pos_embed"]
    length_grid = grid_shape(
        encoder.input_fdim, encoder.input_tdim, ckpt_kernel, *ckpt.strides
    )
    if length_grid != tuple(ckpt.grid):
        pos = adapt_pos_embed(pos, ckpt.grid, length_grid, prefix)
    grid = tuple(encoder.base_grid_size)
    logger.info(
        "%s: resampling pos_embed from grid %s (kernel %s, strides %s) to %s",
        ckpt.path, length_grid, ckpt_kernel, ckpt.strides, grid,
    )
    return resample_pos_embed(pos, length_grid, grid, prefix)


# ----------------------------------------------------------------------
# Public loaders
# ----------------------------------------------------------------------
def load_encoder_weights(encoder, path):
    """Load the encoder part of any supported checkpoint into an encoder.

    The positional embedding is fitted to the encoder's grid with
    ``adapt_pos_embed``; heads in the checkpoint are ignored. This is what
    ``ASTEncoder(init_from=path)`` calls. For original AST files without
    strides in their name, the encoder's strides and mel bins are taken as
    the checkpoint's (a flexible encoder instead guesses them, see
    ``read_checkpoint``, since its own may differ). A flexible encoder also
    takes checkpoints of another kernel size or other strides (FlexiAST's
    initialisation from a fixed-patch AST): the kernel is PI-resized to the
    encoder's base size and the positional embedding resampled to its base
    grid. LayerNorm epsilons are architecture settings of the
    encoder, not weights: set ``layer_norm_eps`` (1e-12 for Hugging Face
    checkpoints) when building it.

    Arguments
    ---------
    encoder : ASTEncoder
        Encoder to load into, in place.
    path : str or os.PathLike
        Original AST / fastast file, Hugging Face folder, or timm file.

    Returns
    -------
    ASTEncoder
        The same encoder.

    Example
    -------
    >>> src = ASTEncoder("tiny224", depth=1, input_tdim=1024)
    >>> path = str(getfixture("tmpdir") / "src.pth")
    >>> torch.save(src.state_dict(), path)
    >>> enc = load_encoder_weights(ASTEncoder("tiny224", depth=1, input_tdim=128), path)
    >>> torch.equal(enc.cls_token, src.cls_token), enc.pos_embed.shape
    (True, torch.Size([1, 146, 192]))
    """
    strides = tuple(encoder.patch_embed.base_stride)
    if encoder.flexible == "none":
        ckpt = _read_checkpoint(path, strides, encoder.input_fdim)
    else:
        ckpt = _read_checkpoint(path, None, encoder.input_fdim, guesses=[strides])
    _warn_eps(ckpt, encoder)
    state = {
        key.removeprefix("encoder."): value
        for key, value in _fit_to_encoder(ckpt, encoder).items()
        if not key.startswith("head.")
    }
    _load_strict(encoder, state, ckpt.path)
    logger.info("Loaded %s encoder weights from %s", ckpt.family, ckpt.path)
    return encoder


def _warn_eps(ckpt, encoder):
    eps = encoder.norm.eps
    if eps != ckpt.arch["layer_norm_eps"]:
        logger.warning(
            "%s was trained with layer_norm_eps=%g but the encoder uses %g",
            ckpt.path, ckpt.arch["layer_norm_eps"], eps,
        )


def from_pretrained(source, **overrides):
    """Build an ``ASTClassifier`` from a checkpoint of any supported format.

    The architecture comes from the tensor shapes (and ``config.json`` for
    Hugging Face). Overrides:

    * ``input_tdim`` (and ``input_fdim``): a different input length; the
      positional embedding is cut (centre) or interpolated as AST does
      (``adapt_pos_embed``).
    * ``fstride``, ``tstride``: for ImageNet checkpoints, any strides. A
      trained audio checkpoint only works at its own strides in a fixed
      (non-flexible) encoder, so for those they only name the strides of
      an original AST file whose name does not say
      (``audioset_12_12_0.4467.pth`` does); a value contradicting the file
      name or ``config.json`` raises ValueError. A flexible encoder takes
      any strides: the positional embedding is resampled to them (its
      checkpoint's strides come from the name, or are guessed).
    * ``n_classes``: a new random head of that size (logged) when it differs
      from the checkpoint's; ImageNet checkpoints always get a new head,
      527 classes unless given.
    * ``patch_size``: the patch size to run at (``encoder.set_patch_size``,
      stride = patch size), not the stored kernel. It makes the encoder
      flexible (``flexible="both"`` unless ``flexible`` is given; FlexiAST
      checkpoints are flexible already).
    * ``base_patch_size``: the stored kernel size of a flexible encoder;
      the checkpoint's kernel is PI-resized to it (with ``fstride`` /
      ``tstride``, this builds a FlexiAST model from a fixed-patch AST).
    * any other ``ASTEncoder`` argument (``r``, ``keep_ratio``,
      ``prop_attn``, ``trace_source``, ``fused_attn``, ``drop_path``,
      ``layer_norm_eps``, ...) is passed to the encoder.

    Arguments
    ---------
    source : str or os.PathLike
        Original AST / fastast ``.pth``, Hugging Face folder, or timm file.
    **overrides
        See above.

    Returns
    -------
    ASTClassifier
        In eval mode. ``model.labels`` is the list of class names from a
        Hugging Face ``config.json`` (``id2label``), or None when the
        checkpoint has none or the head is new.

    Example
    -------
    >>> enc = ASTEncoder("tiny224", depth=1, input_tdim=128)
    >>> path = str(getfixture("tmpdir") / "clf.pth")
    >>> torch.save(ASTClassifier(enc, ASTHead(192, 35)).state_dict(), path)
    >>> model = from_pretrained(path, input_tdim=128, r=8)
    >>> model(torch.randn(2, 128, 128)).shape, model.encoder.r
    (torch.Size([2, 35]), 8)
    >>> flexi = from_pretrained(path, input_tdim=128, patch_size=32)
    >>> flexi.encoder.flexible, flexi.encoder.patch_size, flexi.encoder.grid_size
    ('both', (32, 32), (4, 4))
    """
    n_classes = overrides.pop("n_classes", None)
    patch_size = overrides.pop("patch_size", None)
    base_patch_size = overrides.pop("base_patch_size", None)
    _check_overrides(overrides)
    wants_flexible = patch_size is not None or base_patch_size is not None
    if wants_flexible:
        overrides.setdefault("flexible", "both")
    ckpt = _read_for_overrides(source, overrides)
    kwargs = _encoder_kwargs(ckpt, overrides)
    if base_patch_size is not None:
        kwargs["patch_size"] = base_patch_size
    encoder = ASTEncoder(**kwargs)
    state = _fit_to_encoder(ckpt, encoder)
    head, labels = _make_head(ckpt, encoder.embed_dim, n_classes, state)
    model = ASTClassifier(encoder, head)
    _load_strict(model, state, ckpt.path)
    if patch_size is not None:
        encoder.set_patch_size(patch_size)
    model.labels = labels
    logger.info("Loaded %s checkpoint %s", ckpt.family, ckpt.path)
    return model.eval()


def _read_for_overrides(source, overrides):
    """Strides overrides name an unnamed AST file's strides, unless flexible.

    A flexible encoder may have other strides than its checkpoint, so its
    ``fstride``/``tstride`` are only a last guess (see ``_guess_strides``).
    """
    strides = overrides.get("fstride"), overrides.get("tstride")
    input_fdim = overrides.get("input_fdim")
    if overrides.get("flexible", "none") == "none":
        return read_checkpoint(source, *strides, input_fdim)
    guesses = [] if None in strides else [strides]
    return _read_checkpoint(source, None, input_fdim, guesses)


def _check_overrides(overrides):
    allowed = set(inspect.signature(ASTEncoder).parameters) - {"init_from"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TypeError(
            f"from_pretrained() got unknown override(s) {unknown}; accepted: "
            "n_classes, base_patch_size and the ASTEncoder arguments "
            f"{sorted(allowed)} (patch_size is the patch size to run at)"
        )


def _encoder_kwargs(ckpt, overrides):
    sizes = {dim: name for name, (dim, _, _) in MODEL_SIZES.items()}
    sizes[768] = "base384"  # a label only: the shapes are passed explicitly
    model_size = sizes.get(ckpt.arch["embed_dim"], "base384")
    kwargs = {"model_size": model_size, **ckpt.arch, **overrides}
    if kwargs["num_heads"] is None:
        raise ValueError(
            f"{ckpt.path}: cannot infer num_heads for embed_dim "
            f"{kwargs['embed_dim']} (not a multiple of the usual head size 64); "
            "pass num_heads=..."
        )
    return kwargs


def _make_head(ckpt, embed_dim, n_classes, state):
    """New or trained head; a new head's tensors are put into ``state``."""
    linear = state.get("head.linear.weight")
    trained = linear.shape[0] if linear is not None else None
    if any(k.startswith("head.") for k in state) and n_classes in (None, trained):
        n_classes = trained or n_classes or DEFAULT_N_CLASSES  # strict load checks
        return ASTHead(embed_dim, n_classes, ckpt.head_eps), ckpt.labels
    n_classes = n_classes or len(ckpt.labels or ()) or DEFAULT_N_CLASSES
    logger.info("%s: new random head with %d classes", ckpt.path, n_classes)
    head = ASTHead(embed_dim, n_classes, ckpt.head_eps)
    for key in [k for k in state if k.startswith("head.")]:
        del state[key]
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    return head, None
