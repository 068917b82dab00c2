"""Read any supported checkpoint, infer its architecture, fit it to an encoder.

``read_checkpoint`` reads a file or Hugging Face folder safely
(``fastast_plugin.weights.state_dict``), recognises and renames it
(``fastast_plugin.weights.convert``) and infers the ``ASTEncoder`` arguments its
tensors imply: a ``Checkpoint``. ``fit_to_encoder`` then fits the
positional embedding to the encoder's grid (``adapt_pos_embed``, AST's
rule) and, for a flexible encoder of another patch geometry, PI-resizes
the kernel and resamples the grid (FlexiAST's initialisation from a
fixed-patch AST, ``fastast_plugin.weights.resize``). ``load_encoder_weights`` is
what ``ASTEncoder(init_from=...)`` calls. This module sits below the
model: it uses the encoder through its attributes only and never imports
``fastast_plugin.models.ast``.

Authors
 * fastast developers 2026
"""

import re
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from speechbrain.utils.logger import get_logger

from fastast_plugin.weights.convert import (
    convert_ast_original,
    convert_flexiast,
    convert_hf_ast,
    convert_timm_vit,
    detect_format,
)
from fastast_plugin.weights.folder import WEIGHTS_FILE, read_export_config
from fastast_plugin.weights.resize import (
    grid_to_pos_embed,
    patch_grid,
    pi_resize,
    pos_embed_to_grid,
    resample_pos_embed,
)
from fastast_plugin.weights.state_dict import (
    CheckpointError,
    CheckpointMismatchError,
    existing_path,
    load_strict,
    read_json,
    read_state_dict,
)

__all__ = [
    "Checkpoint",
    "adapt_pos_embed",
    "fit_to_encoder",
    "frames_for_grid",
    "load_encoder_weights",
    "read_checkpoint",
    "read_for_encoder",
]

logger = get_logger(__name__)

_StateDict = dict[str, torch.Tensor]

# Settings AST checkpoints do not record; AST's defaults.
_DEFAULT_FDIM = 128
_DEFAULT_TDIM = 1024
_DEFAULT_STRIDES = (10, 10)
_AST_HEAD_EPS = 1e-5  # torch's LayerNorm default, AST's mlp_head
_TIMM_EPS = 1e-6  # timm ViT/DeiT blocks
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HF_CONFIG_FILE = "config.json"
# audioset_10_10_0.4593.pth, speechcommands_10_10_0.9812.pth, ...
_AST_FILE_NAME = re.compile(r"_(\d+)_(\d+)_\d+\.\d+\.pth$")


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
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> torch.save(ASTEncoder("tiny224", depth=1, input_tdim=1024).state_dict(), path)
    >>> ckpt = read_checkpoint(path)
    >>> ckpt.grid, ckpt.strides, ckpt.arch["num_heads"]
    ((12, 101), (10, 10), 3)
    """

    path: str
    family: str
    state_dict: _StateDict
    arch: dict
    grid: tuple[int, int]
    strides: tuple[int, int] | None
    head_eps: float
    labels: list | None


def _read_source(source):
    """Return (raw state dict, HF config or None, weights path)."""
    path = existing_path(source)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        found = [path / name for name in _HF_WEIGHT_FILES if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(
                f"{path} is a folder without weights: expected one of "
                f"{', '.join(_HF_WEIGHT_FILES)} (with {_HF_CONFIG_FILE})"
            )
        path = found[0]
    config_path = folder / _HF_CONFIG_FILE
    config = read_json(config_path) if config_path.is_file() else None
    return read_state_dict(path), config, path


def _recorded_geometry(path):
    """``((fstride, tstride), input_fdim)`` a fastast file records, or None.

    From the config stored in the file (a recipe's ``model.pt``) or beside
    it (an exported folder's ``model.safetensors``): no guessing needed.
    """
    config = read_export_config(path)
    if config is None and Path(path).name == WEIGHTS_FILE:
        config = read_export_config(Path(path).parent)
    if config is None:
        return None
    encoder = config["encoder"]
    return (encoder["fstride"], encoder["tstride"]), encoder["input_fdim"]


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
    ``fastast_plugin.weights.resize.resample_pos_embed`` applies instead.)

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


def read_checkpoint(source, fstride=None, tstride=None, input_fdim=None, stride_guesses=()):
    """Read, recognise and convert a checkpoint of any supported family.

    Exported folders and recipes' ``model.pt`` record their strides and
    mel bins (``read_export_config``), which are then used as they are.
    Original AST files do not record them: the
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
    stride_guesses : sequence of (int, int)
        Further ``(fstride, tstride)`` to try, after 10/10 and the patch
        size, for a file without strides in its name when neither
        ``fstride`` nor ``tstride`` is given (a flexible encoder's own
        strides, which may differ from its checkpoint's).

    Returns
    -------
    Checkpoint
        Converted tensors and inferred architecture.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> enc = ASTEncoder("tiny224", depth=1, input_tdim=128)
    >>> path = str(getfixture("tmpdir") / "enc.pth")
    >>> torch.save(enc.state_dict(), path)
    >>> ckpt = read_checkpoint(path)
    >>> ckpt.family, ckpt.grid, ckpt.arch["depth"], ckpt.arch["input_tdim"]
    ('ast', (12, 12), 1, 128)
    """
    strides = None
    if fstride or tstride:
        strides = fstride or _DEFAULT_STRIDES[0], tstride or _DEFAULT_STRIDES[1]
    raw, config, path = _read_source(source)
    family = detect_format(raw, path)
    if family == "hf":
        return _describe_hf(convert_hf_ast(raw), config, path)
    if family == "timm":
        return _describe_timm(convert_timm_vit(raw), path)
    input_fdim = input_fdim or _DEFAULT_FDIM
    if family == "flexiast":
        return _describe_flexiast(convert_flexiast(raw), path, input_fdim)
    state = convert_ast_original(raw)
    match = _AST_FILE_NAME.search(Path(path).name)
    recorded = _recorded_geometry(path)
    if recorded is not None:
        strides, input_fdim = recorded
    elif match:
        strides = int(match.group(1)), int(match.group(2))
    elif strides is None:
        strides = _guess_strides(state, path, input_fdim, stride_guesses)
    return _describe_ast(state, path, tuple(strides), input_fdim)


def read_for_encoder(source, strides, input_fdim, flexible):
    """Read a checkpoint for an encoder of these base strides and mel bins.

    A fixed-patch encoder only runs at its checkpoint's strides, so its
    strides name those of a file that does not record them; a flexible one
    may have other strides than its checkpoint, so its strides are only a
    last guess (``stride_guesses`` of ``read_checkpoint``). Files that
    record their strides (exported folders, recipes' ``model.pt``, original
    AST file names) are read at those in both cases.

    Arguments
    ---------
    source : str or os.PathLike
        Any ``read_checkpoint`` source.
    strides : tuple of int or None
        The encoder's base ``(fstride, tstride)``; None entries: unknown.
    input_fdim : int or None
        The encoder's mel bins.
    flexible : str
        The encoder's ``flexible`` setting.

    Returns
    -------
    Checkpoint

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> path = str(getfixture("tmpdir") / "enc.pth")
    >>> torch.save(ASTEncoder("tiny224", depth=1, input_tdim=128, fstride=16, tstride=10).state_dict(), path)
    >>> read_for_encoder(path, (16, 10), 128, "none").grid
    (8, 12)
    """
    if flexible == "none":
        return read_checkpoint(source, *strides, input_fdim)
    guesses = [] if None in tuple(strides) else [tuple(strides)]
    return read_checkpoint(source, input_fdim=input_fdim, stride_guesses=guesses)


def _guess_strides(state_dict, path, input_fdim, guesses):
    """AST's 10/10, else non-overlapping, else ``guesses``: the first that fits."""
    arch = _shape_arch(state_dict, path)
    patch = arch["patch_size"]
    patches = state_dict["encoder.pos_embed"].shape[1] - arch["num_prefix_tokens"]
    for strides in (_DEFAULT_STRIDES, (patch, patch), *guesses):
        f_dim = (input_fdim - patch) // strides[0] + 1
        if f_dim >= 1 and patches % f_dim == 0:
            if strides != _DEFAULT_STRIDES:
                logger.info(
                    "%s: strides not in the file name; %d patches fit "
                    "fstride/tstride %d/%d (pass fstride/tstride if not)",
                    path,
                    patches,
                    *strides,
                )
            return tuple(strides)
    return _DEFAULT_STRIDES  # _audio_grid names the problem


def _tensor(state_dict, key, path):
    if key not in state_dict:
        raise CheckpointError(f"{path} has no tensor {key!r} (after conversion to fastast names)")
    return state_dict[key]


def _shape_arch(state_dict, path):
    """ASTEncoder arguments implied by the tensor shapes."""
    pos = _tensor(state_dict, "encoder.pos_embed", path)
    kernel = _tensor(state_dict, "encoder.patch_embed.proj.weight", path)
    fc1 = _tensor(state_dict, "encoder.blocks.0.mlp.fc1.weight", path)
    embed_dim = pos.shape[-1]
    if kernel.shape[-1] != kernel.shape[-2]:
        raise CheckpointError(f"{path}: patch kernel {tuple(kernel.shape)} is not square")
    blocks = {int(k.split(".")[2]) for k in state_dict if k.startswith("encoder.blocks.")}
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
        raise CheckpointError(
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
        layer_norm_eps=_TIMM_EPS,
    )
    return Checkpoint(str(path), "ast", state_dict, arch, grid, strides, _AST_HEAD_EPS, None)


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
        raise CheckpointError(
            f"{path}: ImageNet pos_embed holds {patches} patches after "
            f"{arch['num_prefix_tokens']} prefix tokens, expected a square grid"
        )
    arch.update(
        input_fdim=_DEFAULT_FDIM,
        input_tdim=_DEFAULT_TDIM,
        fstride=_DEFAULT_STRIDES[0],
        tstride=_DEFAULT_STRIDES[1],
        layer_norm_eps=_TIMM_EPS,
    )
    return Checkpoint(str(path), "timm", state_dict, arch, (side, side), None, _AST_HEAD_EPS, None)


def _describe_hf(state_dict, config, path):
    if config is None:
        raise FileNotFoundError(
            f"{path} holds Hugging Face AST weights but {Path(path).parent} has "
            f"no {_HF_CONFIG_FILE}; expected a folder as written by save_pretrained"
        )
    arch = _hf_arch(config, path)
    strides = arch["fstride"], arch["tstride"]
    grid = _audio_grid(state_dict, arch, strides[0], arch["input_fdim"], path)
    expected_t = (arch["input_tdim"] - arch["patch_size"]) // strides[1] + 1
    if grid[1] != expected_t:
        arch["input_tdim"] = frames_for_grid(grid[1], strides[1], arch["patch_size"])
        logger.warning(
            "%s: max_length in %s gives %d time patches but pos_embed has %d; using input_tdim=%d",
            path,
            _HF_CONFIG_FILE,
            expected_t,
            grid[1],
            arch["input_tdim"],
        )
    labels = _hf_labels(config)
    eps = arch["layer_norm_eps"]
    return Checkpoint(str(path), "hf", state_dict, arch, grid, strides, eps, labels)


def _hf_arch(config, path):
    """ASTEncoder arguments from an ASTConfig dict (ASTConfig defaults)."""
    if config.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(
            f"{path}: hidden_act={config['hidden_act']!r} in {_HF_CONFIG_FILE}, "
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
        "input_fdim": config.get("num_mel_bins", _DEFAULT_FDIM),
        "input_tdim": config.get("max_length", _DEFAULT_TDIM),
        "fstride": config.get("frequency_stride", 10),
        "tstride": config.get("time_stride", 10),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
    }


def _hf_labels(config):
    id2label = config.get("id2label")
    if not id2label:
        return None
    return [id2label[key] for key in sorted(id2label, key=int)]


_KERNEL_KEY = "encoder.patch_embed.proj.weight"


def fit_to_encoder(ckpt, encoder):
    """Checkpoint tensors fitted to ``encoder``'s base kernel and base grid.

    Same patch geometry (kernel and strides) as the checkpoint, or an
    ImageNet checkpoint: the positional embedding follows AST's rule
    (``adapt_pos_embed``). Another geometry, for flexible encoders only
    (FlexiAST's initialisation): the kernel is PI-resized, and the
    positional embedding is first fitted to the input length with AST's
    rule at the checkpoint's geometry, then resampled to the encoder's
    base grid (``resample_pos_embed``).

    Arguments
    ---------
    ckpt : Checkpoint
        From ``read_checkpoint``.
    encoder : ASTEncoder
        The target; only its ``patch_embed``, ``flexible``, grid and input
        size attributes are read.

    Returns
    -------
    dict
        A new state dict (``encoder.*`` and any ``head.*`` tensors).

    Raises
    ------
    CheckpointMismatchError
        If a fixed-patch encoder has other strides or another kernel size
        than the checkpoint.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> path = str(getfixture("tmpdir") / "audioset_10_10_0.4593.pth")
    >>> torch.save(ASTEncoder("tiny224", depth=1, input_tdim=1024).state_dict(), path)
    >>> encoder = ASTEncoder("tiny224", depth=1, input_tdim=128)
    >>> fit_to_encoder(read_checkpoint(path), encoder)["encoder.pos_embed"].shape
    torch.Size([1, 146, 192])
    """
    embed = encoder.patch_embed
    strides, kernel = tuple(embed.base_stride), tuple(embed.base_patch_size)
    state = dict(ckpt.state_dict)
    ckpt_kernel = tuple(state[_KERNEL_KEY].shape[-2:]) if _KERNEL_KEY in state else kernel
    if encoder.flexible == "none":
        _check_same_geometry(ckpt, strides, kernel, ckpt_kernel)
    if ckpt_kernel != kernel:
        logger.info("%s: PI-resizing the patch kernel %s to %s", ckpt.path, ckpt_kernel, kernel)
        state[_KERNEL_KEY] = pi_resize(state[_KERNEL_KEY], kernel)
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
        raise CheckpointMismatchError(
            f"{ckpt.path} was trained with fstride/tstride "
            f"{ckpt.strides[0]}/{ckpt.strides[1]}, got {strides[0]}/{strides[1]}. "
            "A trained AST positional embedding only fits the strides it was "
            "trained with (AST changes strides only from ImageNet weights); "
            "use a checkpoint trained at the strides you want, or a flexible "
            "encoder (flexible='both'), which resamples it"
        )
    if ckpt_kernel != kernel:
        raise CheckpointMismatchError(
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
    length_grid = patch_grid((encoder.input_fdim, encoder.input_tdim), ckpt_kernel, ckpt.strides)
    if length_grid != tuple(ckpt.grid):
        pos = adapt_pos_embed(pos, ckpt.grid, length_grid, prefix)
    grid = tuple(encoder.base_grid_size)
    logger.info(
        "%s: resampling pos_embed from grid %s (kernel %s, strides %s) to %s",
        ckpt.path,
        length_grid,
        ckpt_kernel,
        ckpt.strides,
        grid,
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
        Original AST / fastast file, Hugging Face folder, timm file, or a
        registry name (``fastast_plugin.weights.registry``).

    Returns
    -------
    ASTEncoder
        The same encoder.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder
    >>> src = ASTEncoder("tiny224", depth=1, input_tdim=1024)
    >>> path = str(getfixture("tmpdir") / "src.pth")
    >>> torch.save(src.state_dict(), path)
    >>> enc = load_encoder_weights(ASTEncoder("tiny224", depth=1, input_tdim=128), path)
    >>> torch.equal(enc.cls_token, src.cls_token), enc.pos_embed.shape
    (True, torch.Size([1, 146, 192]))
    """
    strides = tuple(encoder.patch_embed.base_stride)
    ckpt = read_for_encoder(path, strides, encoder.input_fdim, encoder.flexible)
    _warn_eps(ckpt, encoder)
    state = {
        key.removeprefix("encoder."): value
        for key, value in fit_to_encoder(ckpt, encoder).items()
        if not key.startswith("head.")
    }
    load_strict(encoder, state, ckpt.path)
    logger.info("Loaded %s encoder weights from %s", ckpt.family, ckpt.path)
    return encoder


def _warn_eps(ckpt, encoder):
    eps = encoder.norm.eps
    if eps != ckpt.arch["layer_norm_eps"]:
        logger.warning(
            "%s was trained with layer_norm_eps=%g but the encoder uses %g",
            ckpt.path,
            ckpt.arch["layer_norm_eps"],
            eps,
        )
