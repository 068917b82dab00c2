"""Build an ``ASTClassifier`` from a checkpoint of any supported format.

``from_pretrained`` reads and fits the weights with
``fastast_plugin.weights.fit`` (original AST, Hugging Face AST, timm DeiT/ViT
and FlexiAST checkpoints, see ``fastast_plugin.weights.convert``), builds the
encoder and head they imply, with any ``ASTEncoder`` argument overridden,
and loads them strictly (``fastast_plugin.weights.state_dict``).

Authors
 * fastast developers 2026
"""

import inspect
from pathlib import Path

from speechbrain.utils.logger import get_logger

from fastast_plugin.models.ast import MODEL_SIZES, ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.weights.fit import fit_to_encoder, read_for_encoder
from fastast_plugin.weights.folder import AUDIOSET_CLASSES, WEIGHTS_FILE, read_export_config
from fastast_plugin.weights.state_dict import CheckpointError, load_strict

# read_export_config: also served here, the flat package's checkpoints.read_export_config
__all__ = ["MERGE_SETTING", "from_pretrained", "one_setting_overrides", "read_export_config"]

logger = get_logger(__name__)

# Settings that are one choice each: overriding any member replaces the
# whole group (the others take these defaults), so that a stored value of
# another member (keep_ratio, which wins over r) cannot silently remain.
MERGE_SETTING = {"r": 0, "keep_ratio": None}
_PATCH_SETTING = {"patch_size": None, "patch_stride": None}


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
      name or ``config.json`` raises ``CheckpointMismatchError``. A flexible encoder takes
      any strides: the positional embedding is resampled to them (its
      checkpoint's strides come from the name, or are guessed).
    * ``n_classes``: a new random head of that size (logged) when it differs
      from the checkpoint's; ImageNet checkpoints always get a new head,
      527 classes unless given.
    * ``patch_size``: the patch size to run at (``encoder.set_patch_size``,
      stride = patch size unless ``patch_stride`` is given), not the stored
      kernel. It makes the encoder flexible (``flexible="both"`` unless
      ``flexible`` is given; FlexiAST checkpoints are flexible already).
    * ``patch_stride``: the stride to run at (overlapping patches), with
      ``patch_size`` or at the base patch size; also makes the encoder
      flexible.
    * ``base_patch_size``: the stored kernel size of a flexible encoder;
      the checkpoint's kernel is PI-resized to it (with ``fstride`` /
      ``tstride``, this builds a FlexiAST model from a fixed-patch AST).
    * any other ``ASTEncoder`` argument (``r``, ``keep_ratio``,
      ``prop_attn``, ``trace_source``, ``fused_attn``, ``drop_path``,
      ``layer_norm_eps``, ...) is passed to the encoder.

    Exported folders and recipes' ``model.pt`` record their encoder, head,
    labels and run-time patch size and stride: they come back as saved,
    the overrides applied on top. ``r`` and ``keep_ratio`` are one setting,
    and so are ``patch_size`` and ``patch_stride``: overriding one member
    replaces the recorded setting (``one_setting_overrides``).

    Arguments
    ---------
    source : str or os.PathLike
        Original AST / fastast ``.pth``, recipe ``model.pt``, exported
        folder, Hugging Face folder, or timm file.
    **overrides
        See above.

    Returns
    -------
    ASTClassifier
        In eval mode. Its ``labels`` are the class names of a Hugging Face
        ``config.json`` (``id2label``), or None when the checkpoint has
        none or the head is new.

    Example
    -------
    >>> import torch
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
    config = read_export_config(source)
    if config is not None:
        return _from_export(Path(source), config, overrides)
    return _from_checkpoint(source, overrides)


def _from_checkpoint(source, overrides):
    """Any checkpoint file or folder, built with the overrides."""
    overrides = dict(overrides)
    n_classes = overrides.pop("n_classes", None)
    patch_size = overrides.pop("patch_size", None)
    patch_stride = overrides.pop("patch_stride", None)
    base_patch_size = overrides.pop("base_patch_size", None)
    _check_overrides(overrides)
    if (patch_size, patch_stride, base_patch_size) != (None, None, None):
        overrides.setdefault("flexible", "both")
    strides = overrides.get("fstride"), overrides.get("tstride")
    flexible = overrides.get("flexible", "none")
    ckpt = read_for_encoder(source, strides, overrides.get("input_fdim"), flexible)
    kwargs = _encoder_kwargs(ckpt, overrides)
    if base_patch_size is not None:
        kwargs["patch_size"] = base_patch_size
    encoder = ASTEncoder(**kwargs)
    state = fit_to_encoder(ckpt, encoder)
    head, labels = _make_head(ckpt, encoder.embed_dim, n_classes, state)
    model = load_strict(ASTClassifier(encoder, head, labels), state, ckpt.path)
    if patch_size is not None or patch_stride is not None:
        encoder.set_patch_size(patch_size, patch_stride)
    logger.info("Loaded %s checkpoint %s", ckpt.family, ckpt.path)
    return model.eval()


def one_setting_overrides(overrides, settings=(MERGE_SETTING, _PATCH_SETTING)):
    """Overrides completed so that each overridden setting replaces the stored one.

    ``r`` and ``keep_ratio`` are one setting (``keep_ratio`` wins over
    ``r``), and so are ``patch_size`` and ``patch_stride``: when overrides
    name one member of a setting, its other members get their defaults
    instead of keeping stored values.

    Arguments
    ---------
    overrides : dict
        Keyword overrides (``from_pretrained``'s, or an exported folder's
        ``hyperparams.yaml`` keys).
    settings : sequence of dict
        The settings: member names to defaults.

    Returns
    -------
    dict
        A new dict.

    Example
    -------
    >>> one_setting_overrides({"r": 8, "input_tdim": 256})
    {'r': 8, 'keep_ratio': None, 'input_tdim': 256}
    >>> one_setting_overrides({"patch_size": 32})
    {'patch_size': 32, 'patch_stride': None}
    """
    completed = dict(overrides)
    for setting in settings:
        if setting.keys() & completed.keys():
            completed = {**setting, **completed}
    return completed


def _check_overrides(overrides):
    allowed = set(inspect.signature(ASTEncoder).parameters) - {"init_from"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TypeError(
            f"from_pretrained() got unknown override(s) {unknown}; accepted: "
            "n_classes, base_patch_size, patch_stride and the ASTEncoder arguments "
            f"{sorted(allowed)} (patch_size and patch_stride are those to run at)"
        )


def _encoder_kwargs(ckpt, overrides):
    sizes = {dim: name for name, (dim, _, _) in MODEL_SIZES.items()}
    sizes[768] = "base384"  # a label only: the shapes are passed explicitly
    model_size = sizes.get(ckpt.arch["embed_dim"], "base384")
    kwargs = {"model_size": model_size, **ckpt.arch, **overrides}
    if kwargs["num_heads"] is None:
        raise CheckpointError(
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
        n_classes = trained or n_classes or AUDIOSET_CLASSES  # strict load checks
        return ASTHead(embed_dim, n_classes, ckpt.head_eps), ckpt.labels
    n_classes = n_classes or len(ckpt.labels or ()) or AUDIOSET_CLASSES
    logger.info("%s: new random head with %d classes", ckpt.path, n_classes)
    head = ASTHead(embed_dim, n_classes, ckpt.head_eps)
    for key in [k for k in state if k.startswith("head.")]:
        del state[key]
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    return head, None


def _from_export(source, config, overrides):
    """An exported folder or a recipe's ``model.pt``: rebuilt from its config.

    Overrides win over the config, each replacing a whole setting
    (``one_setting_overrides``); a new ``input_tdim`` adapts the
    positional embedding as for any AST checkpoint.
    """
    encoder = dict(config["encoder"])
    base_patch = encoder.pop("patch_size")
    if encoder["flexible"] != "none":
        encoder["base_patch_size"] = base_patch
        encoder["patch_size"] = config.get("runtime_patch_size", base_patch)
        encoder["patch_stride"] = config.get("runtime_stride")
    weights = source / WEIGHTS_FILE if source.is_dir() else source
    model = _from_checkpoint(weights, {**encoder, **one_setting_overrides(overrides)})
    model.head.norm.eps = config["head"]["layer_norm_eps"]
    labels = config.get("labels")
    if labels is not None and len(labels) != model.head.linear.out_features:
        labels = None  # a new head (n_classes override) has no names
    return ASTClassifier(model.encoder, model.head, labels).eval()
