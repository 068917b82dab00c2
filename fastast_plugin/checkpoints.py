"""Build an ``ASTClassifier`` from a checkpoint of any supported format.

``from_pretrained`` reads and fits the weights with
``fastast_plugin.weights`` (original AST, Hugging Face AST, timm DeiT/ViT
and FlexiAST checkpoints, see ``fastast_plugin.convert``), builds the
encoder and head they imply, with any ``ASTEncoder`` argument overridden,
and loads them strictly (``fastast_plugin.state_dict``).

Authors
 * fastast developers 2026
"""

import inspect
import json
from pathlib import Path

from speechbrain.utils.logger import get_logger

from fastast_plugin.ast import MODEL_SIZES, ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.state_dict import CheckpointError, load_strict
from fastast_plugin.weights import fit_to_encoder, read_checkpoint

__all__ = ["from_pretrained", "read_export_config"]

logger = get_logger(__name__)

DEFAULT_N_CLASSES = 527  # AudioSet's, AST's default head

# An exported inference folder (fastast_plugin.export): weights + plain JSON.
EXPORT_FORMAT = "fastast-export-1"
EXPORT_CONFIG = "fastast_config.json"
EXPORT_WEIGHTS = "model.safetensors"


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
    state = fit_to_encoder(ckpt, encoder)
    head, labels = _make_head(ckpt, encoder.embed_dim, n_classes, state)
    model = load_strict(ASTClassifier(encoder, head, labels), state, ckpt.path)
    if patch_size is not None:
        encoder.set_patch_size(patch_size)
    logger.info("Loaded %s checkpoint %s", ckpt.family, ckpt.path)
    return model.eval()


def _read_for_overrides(source, overrides):
    """Strides overrides name an unnamed AST file's strides, unless flexible.

    A flexible encoder may have other strides than its checkpoint, so its
    ``fstride``/``tstride`` are only a last guess (``stride_guesses`` of
    ``read_checkpoint``).
    """
    strides = overrides.get("fstride"), overrides.get("tstride")
    input_fdim = overrides.get("input_fdim")
    if overrides.get("flexible", "none") == "none":
        return read_checkpoint(source, *strides, input_fdim)
    guesses = [] if None in strides else [strides]
    return read_checkpoint(source, input_fdim=input_fdim, stride_guesses=guesses)


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
        n_classes = trained or n_classes or DEFAULT_N_CLASSES  # strict load checks
        return ASTHead(embed_dim, n_classes, ckpt.head_eps), ckpt.labels
    n_classes = n_classes or len(ckpt.labels or ()) or DEFAULT_N_CLASSES
    logger.info("%s: new random head with %d classes", ckpt.path, n_classes)
    head = ASTHead(embed_dim, n_classes, ckpt.head_eps)
    for key in [k for k in state if k.startswith("head.")]:
        del state[key]
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    return head, None


def read_export_config(source):
    """The ``fastast_config.json`` of an exported folder, or None for other sources.

    Plain JSON: reading it executes nothing (unlike the folder's
    ``hyperparams.yaml``, which ``from_pretrained`` never reads).

    Arguments
    ---------
    source : str or os.PathLike
        Any ``from_pretrained`` source.

    Returns
    -------
    dict or None
        The config when ``source`` is an exported folder.

    Example
    -------
    >>> read_export_config(getfixture("tmp_path")) is None
    True
    """
    path = Path(source) / EXPORT_CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable JSON config: {err}") from err
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(
            f"{path}: expected an export config with format {EXPORT_FORMAT!r}, got {found!r}"
        )
    return config


def _from_export(folder, config, overrides):
    """An exported folder: its weights, rebuilt with the config's architecture.

    Overrides win over the config; a new ``input_tdim`` adapts the
    positional embedding as for any AST checkpoint.
    """
    encoder = dict(config["encoder"])
    for key in ("r", "keep_ratio", "prop_attn", "trace_source"):
        if key in overrides:  # explicit run-time choices replace the exported ones
            encoder.pop(key)
    base_patch = encoder.pop("patch_size")
    if encoder["flexible"] != "none":
        encoder["base_patch_size"] = base_patch
        encoder["patch_size"] = config.get("runtime_patch_size", base_patch)
    model = from_pretrained(folder / EXPORT_WEIGHTS, **{**encoder, **overrides})
    model.head.norm.eps = config["head"]["layer_norm_eps"]
    labels = config.get("labels")
    if labels is not None and len(labels) != model.head.linear.out_features:
        labels = None  # a new head (n_classes override) has no names
    return ASTClassifier(model.encoder, model.head, labels).eval()
