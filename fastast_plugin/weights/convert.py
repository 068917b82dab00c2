"""Recognise a checkpoint's family and rename its tensors to this plugin's names.

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
through unchanged so that the strict load names them. Reading files,
inferring the architecture and fitting the tensors to an encoder are
``fastast_plugin.weights.fit``; the converters here only rename and reshape.

Authors
 * fastast developers 2026
"""

import re

import torch

from fastast_plugin.weights.state_dict import CheckpointError

__all__ = [
    "convert_ast_original",
    "convert_flexiast",
    "convert_hf_ast",
    "convert_timm_vit",
    "detect_format",
]

_FLEXIAST_POS_KEYS = ("module.pos_embed.pos_embed", "pos_embed.pos_embed")


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
    if any(key in state_dict for key in _FLEXIAST_POS_KEYS):
        return "flexiast"
    kernel = _patch_kernel(state_dict)
    if kernel is not None and kernel.dim() == 4 and kernel.shape[1] in (1, 3):
        return "ast" if kernel.shape[1] == 1 else "timm"
    found = "none" if kernel is None else f"shape {tuple(kernel.shape)}"
    raise CheckpointError(
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
        return dict(parts.values())
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
