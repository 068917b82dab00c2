"""EfficientAT's released DyMN weights: registry, download and strict loading.

EfficientAT (https://github.com/fschmid56/EfficientAT, ``models/dymn/model.py``)
publishes plain DyMN state dicts in its GitHub release ``v0.0.1``. This
module names them, downloads them on request, reads them safely and loads
them strictly into ``fastast_plugin.models.dymn.model.DyMN`` through
``fastast_plugin.weights.state_dict``: a key or shape mismatch raises
``CheckpointMismatchError``, as for every other checkpoint of the package.
Unlike EfficientAT, a different class count never loads silently with
``strict=False``: either the released output layer is replaced on request
(fine-tuning), or the mismatch is one clear error.

Authors
 * fastast developers 2026
"""

import os

import torch
from speechbrain.utils.logger import get_logger

from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.weights.registry import DYMN_RELEASE, REGISTRY, resolve
from fastast_plugin.weights.registry import download as download_file
from fastast_plugin.weights.state_dict import CheckpointMismatchError, load_strict, read_state_dict

__all__ = ["load_dymn", "load_dymn_file"]

logger = get_logger(__name__)

# Release that hosts EfficientAT's pretrained weights.
_DYMN_BASE_URL = DYMN_RELEASE

# Checkpoint name -> file in the release, from the registry
# (``fastast_plugin.weights.registry``). "_im" files are ImageNet weights (trained to a
# final kernel-attention temperature of 30), "_as" files are AudioSet weights
# (temperature 1). "dymn20_as" points to the current upstream default;
# "(1)".."(3)" are the alternative dymn20 AudioSet files.
_DYMN_CHECKPOINTS = {
    entry.name: entry.filename for entry in REGISTRY.values() if entry.model == "dymn"
}

# File-name prefix -> DyMN width_mult (EfficientAT's NAME_TO_WIDTH).
_DYMN_WIDTHS = {"dymn04": 0.4, "dymn10": 1.0, "dymn20": 2.0}

# The output Linear of DyMN's classifier MLP.
_HEAD_KEYS = ("classifier.5.weight", "classifier.5.bias")


def _checkpoint_num_classes(state_dict: dict[str, torch.Tensor], source: str = "state dict") -> int:
    """Number of classes of a DyMN state dict (rows of its output layer).

    Arguments
    ---------
    state_dict : dict
        EfficientAT-style DyMN state dict.
    source : str
        Where it comes from (a file path), for the message.

    Returns
    -------
    int
        ``state_dict["classifier.5.weight"].shape[0]``.

    Raises
    ------
    CheckpointMismatchError
        If there is no 2-D ``classifier.5.weight``.

    Example
    -------
    >>> _checkpoint_num_classes(DyMN(num_classes=7, width_mult=0.4).state_dict())
    7
    """
    head = state_dict.get(_HEAD_KEYS[0])
    if head is None or head.dim() != 2:
        raise CheckpointMismatchError(
            f"{source} is not a DyMN state dict: it has no 2-D "
            f"{_HEAD_KEYS[0]!r}, so its number of classes is unknown"
        )
    return int(head.shape[0])


def _check_num_classes(
    state_dict: dict[str, torch.Tensor], num_classes: int, source: str = "state dict"
):
    """Raises one clear error when a DyMN state dict has another class count.

    Arguments
    ---------
    state_dict : dict
        EfficientAT-style DyMN state dict.
    num_classes : int
        The class count asked for (e.g. the student's).
    source : str
        Where the state dict comes from (a file path), for the message.

    Raises
    ------
    CheckpointMismatchError
        Naming ``source``, both class counts and the head tensor.

    Example
    -------
    >>> sd = DyMN(num_classes=7, width_mult=0.4).state_dict()
    >>> _check_num_classes(sd, 7)
    >>> _check_num_classes(sd, 5, "t.pt")
    Traceback (most recent call last):
    ...
    fastast_plugin.weights.state_dict.CheckpointMismatchError: t.pt has 7 classes ...
    """
    classes = _checkpoint_num_classes(state_dict, source)
    if classes != num_classes:
        raise CheckpointMismatchError(
            f"{source} has {classes} classes ({_HEAD_KEYS[0]} "
            f"{tuple(state_dict[_HEAD_KEYS[0]].shape)}), but num_classes="
            f"{num_classes} was asked for"
        )


def _load_dymn_state_dict(
    model: DyMN,
    state_dict: dict[str, torch.Tensor],
    source: str = "state dict",
    allow_new_head: bool = False,
) -> DyMN:
    """Loads an EfficientAT DyMN state dict strictly.

    Arguments
    ---------
    model : DyMN
        The model to load into (in place).
    state_dict : dict
        EfficientAT-style state dict (no ``module.`` prefix).
    source : str
        Where the state dict comes from (a file path), for messages.
    allow_new_head : bool
        If True and the checkpoint's output layer ``classifier.5`` has a
        different number of classes than ``model``, the model keeps its
        freshly initialised output layer (logged). Every other tensor must
        still match exactly.

    Returns
    -------
    DyMN
        ``model``, for chaining.

    Raises
    ------
    CheckpointMismatchError
        Naming the missing keys, unexpected keys and mis-shaped tensors.

    Example
    -------
    >>> source = DyMN(num_classes=527, width_mult=0.4)
    >>> target = DyMN(num_classes=50, width_mult=0.4)
    >>> model = _load_dymn_state_dict(target, source.state_dict(), allow_new_head=True)
    >>> model.classifier[5].out_features
    50
    """
    head = state_dict.get(_HEAD_KEYS[0])
    if allow_new_head and head is not None and head.shape[0] != model.num_classes:
        logger.info(
            "Not loading the output layer of %s (classifier.5, %d classes); "
            "the model keeps a freshly initialised %d-class head.",
            source,
            head.shape[0],
            model.num_classes,
        )
        own = model.state_dict()
        state_dict = {**state_dict, **{key: own[key] for key in _HEAD_KEYS}}
    return load_strict(model, state_dict, source)


def load_dymn_file(
    path: str,
    width_mult: float,
    num_classes: int | None = None,
    allow_new_head: bool = False,
    **model_kwargs,
) -> DyMN:
    """Builds a :class:`~fastast_plugin.models.dymn.model.DyMN` from a state-dict file.

    The file is read safely (``fastast_plugin.weights.state_dict.read_state_dict``)
    and loaded strictly.

    Arguments
    ---------
    path : str
        A ``.pt`` / ``.safetensors`` DyMN state dict, e.g. a fine-tuned
        teacher.
    width_mult : float
        Width of the DyMN in the file: 0.4, 1.0 or 2.0.
    num_classes : int, optional
        Output classes; None takes the checkpoint's. Any other count is an
        error (:func:`_check_num_classes`) unless ``allow_new_head``.
    allow_new_head : bool
        Whether a different ``num_classes`` keeps a new output layer (see
        :func:`_load_dymn_state_dict`).
    **model_kwargs
        Other ``DyMN`` arguments that leave the weight shapes alone:
        ``temperature``, ``strides``, ``dropout``.

    Returns
    -------
    DyMN
        The model with loaded weights, in training mode like any new module.

    Example
    -------
    >>> path = getfixture("tmp_path") / "teacher.pt"
    >>> torch.save(DyMN(num_classes=7, width_mult=0.4).state_dict(), path)
    >>> load_dymn_file(path, width_mult=0.4).num_classes
    7
    """
    source = os.fspath(path)
    state_dict = read_state_dict(path)
    if num_classes is None:
        num_classes = _checkpoint_num_classes(state_dict, source)
    elif not allow_new_head:
        _check_num_classes(state_dict, num_classes, source)
    model = DyMN(num_classes=num_classes, width_mult=width_mult, **model_kwargs)
    _load_dymn_state_dict(model, state_dict, source, allow_new_head)
    logger.info("Loaded DyMN weights %s (temperature %s)", source, model.temperature)
    return model


def _dymn_checkpoint_path(
    name: str, checkpoint_dir: str | None = None, download: bool = False
) -> str:
    """Path of a released DyMN file, downloaded first if asked and missing.

    Arguments
    ---------
    name : str
        A key of ``_DYMN_CHECKPOINTS`` (e.g. ``"dymn10_as"``) or the stem of
        one of its files (e.g. ``"dymn20_as_mAP_489"``).
    checkpoint_dir : str, optional
        Folder holding (or receiving) the ``.pt`` files; None uses the
        registry's cache (``fastast_plugin.weights.registry.cache_dir``), where a
        missing file is always downloaded.
    download : bool
        Whether to fetch a missing file from ``_DYMN_BASE_URL`` into
        ``checkpoint_dir``.

    Returns
    -------
    str
        ``checkpoint_dir/<file>``; the file name starts with the width
        prefix (``dymn04`` / ``dymn10`` / ``dymn20``).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> torch.save({}, folder / "dymn20_as_mAP_493.pt")
    >>> os.path.basename(_dymn_checkpoint_path("dymn20_as", folder))
    'dymn20_as_mAP_493.pt'
    """
    # Registry names take precedence over file stems ("dymn20_as" is the
    # mAP-493 file, not "dymn20_as.pt").
    lookup = {os.path.splitext(f)[0]: f for f in _DYMN_CHECKPOINTS.values()}
    lookup.update(_DYMN_CHECKPOINTS)
    if name not in lookup:
        raise ValueError(f"name must be one of {sorted(lookup)}, got {name!r}")
    filename = lookup[name]
    if checkpoint_dir is None:
        return resolve(next(k for k, f in _DYMN_CHECKPOINTS.items() if f == filename))
    path = os.path.join(os.fspath(checkpoint_dir), filename)
    if os.path.isfile(path):
        return path
    url = _DYMN_BASE_URL + filename
    if not download:
        raise FileNotFoundError(
            f"DyMN checkpoint {path!r} not found; place {url} there or "
            "call load_dymn(..., download=True)"
        )
    download_file(url, path)
    return path


def load_dymn(
    name: str,
    checkpoint_dir: str | None = None,
    num_classes: int | None = None,
    download: bool = False,
    temperature: float | None = None,
    **model_kwargs,
) -> DyMN:
    """Builds a DyMN and loads EfficientAT's released weights by name.

    Arguments
    ---------
    name : str
        A key of ``_DYMN_CHECKPOINTS`` or a file stem (see
        :func:`_dymn_checkpoint_path`).
    checkpoint_dir : str, optional
        Folder holding (or receiving) the ``.pt`` files; None: the
        registry's cache.
    num_classes : int, optional
        Output classes; None keeps the checkpoint's head. Any other value
        that differs from the checkpoint keeps a freshly initialised output
        layer instead of the released one (everything else loads strictly),
        as EfficientAT does for fine-tuning.
    download : bool
        Whether to download a missing file from EfficientAT's release.
    temperature : float, optional
        Kernel-attention temperature; None uses the value the weights were
        trained with (30.0 for ``_im``, 1.0 for ``_as`` checkpoints).
    **model_kwargs
        ``strides`` or ``dropout`` of the ``DyMN`` (see
        :func:`load_dymn_file`).

    Returns
    -------
    DyMN
        The width of ``name``, with the released weights.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> torch.save(DyMN(width_mult=0.4).state_dict(), folder / "dymn04_as.pt")
    >>> model = load_dymn("dymn04_as", folder, num_classes=10)
    >>> model.classifier[5].out_features, model.temperature
    (10, 1.0)
    """
    path = _dymn_checkpoint_path(name, checkpoint_dir, download)
    filename = os.path.basename(path)
    if temperature is None:
        temperature = 30.0 if "_im" in filename else 1.0
    return load_dymn_file(
        path,
        width_mult=_DYMN_WIDTHS[filename[:6]],
        num_classes=num_classes,
        allow_new_head=True,
        temperature=temperature,
        **model_kwargs,
    )
