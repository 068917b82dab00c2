"""Safe reading and strict checking of state dicts, shared by every format.

Every weight file of the package (AST, Hugging Face, timm, FlexiAST and
DyMN checkpoints) is read by ``read_state_dict``: safetensors files with
``safetensors``, torch files with ``torch.load(weights_only=True)``, so no
pickled code ever runs. The format is told from the file's first bytes, not
its name: SpeechBrain's Pretrainer stores every loadable as ``<name>.ckpt``.
Keys of modules saved while compiled (``torch.compile``'s ``_orig_mod.``)
are read as the plain module's. Every strict load goes through
``_check_state_dict`` / ``load_strict``, which name the file, the module
and each missing, unexpected or mis-shaped tensor. All failures raise
``CheckpointError`` (a ``ValueError``); strict-load mismatches raise its
subclass ``CheckpointMismatchError``.

Authors
 * fastast developers 2026
"""

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from fastast_plugin.weights.registry import resolve

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "existing_path",
    "load_strict",
    "read_json",
    "read_state_dict",
    "read_stored_entry",
]


_NESTING_KEYS = ("state_dict", "model")  # {"state_dict": sd} / {"model": sd}
_MAX_LISTED = 10  # keys listed per problem in a mismatch message
_COMPILED_PREFIX = "_orig_mod."  # torch.compile's OptimizedModule holds the module here


class CheckpointError(ValueError):
    """A weight file is unreadable, not a checkpoint, or holds the wrong content.

    Example
    -------
    >>> issubclass(CheckpointError, ValueError)
    True
    """


class CheckpointMismatchError(CheckpointError):
    """A state dict does not fit a module (missing, unexpected, mis-shaped keys).

    Example
    -------
    >>> issubclass(CheckpointMismatchError, CheckpointError)
    True
    """


def existing_path(path):
    """Return ``path`` as a ``Path``; FileNotFoundError naming it if missing.

    A registry name (``fastast_plugin.weights.registry``) stands for its cached file
    or folder, downloaded on first use.

    Arguments
    ---------
    path : str or os.PathLike
        A file or folder, or a registry name.

    Returns
    -------
    pathlib.Path
        The same path.

    Example
    -------
    >>> existing_path(getfixture("tmp_path")).is_dir()
    True
    """
    path = Path(resolve(path))
    if not path.exists():
        raise FileNotFoundError(
            f"Checkpoint not found: {path} (expected a local file or folder, or "
            "a registry name: `fastast weights` lists them)"
        )
    return path


def read_state_dict(path):
    """Read a tensor state dict from a safetensors or torch file, whatever its name.

    Torch files are read with ``weights_only=True``; the usual nesting
    ``{"state_dict": ...}`` / ``{"model": ...}`` is unwrapped, and
    ``torch.compile``'s ``_orig_mod.`` is removed from the keys.

    Arguments
    ---------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict
        Tensor names to tensors, on the CPU.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is not a torch/safetensors checkpoint, holds pickled
        objects other than tensors, or is not a ``{str: tensor}`` dict.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "weights.pth")
    >>> torch.save({"model": {"w": torch.ones(2)}}, path)
    >>> read_state_dict(path)
    {'w': tensor([1., 1.])}
    """
    path = existing_path(path)
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    else:
        state = _as_tensor_dict(_torch_load(path), path)
    return {key.replace(_COMPILED_PREFIX, ""): value for key, value in state.items()}


def read_stored_entry(path, key):
    """The non-tensor entry ``key`` a torch file stores beside its state dict, or None.

    Only the entry is read: the file is memory-mapped, so its tensors are
    not loaded. Safetensors files, legacy (non-zip) torch files and other
    files give None.

    Arguments
    ---------
    path : str or os.PathLike
        The file.
    key : str
        A top-level key of the saved dict.

    Returns
    -------
    dict or None
        The entry, when it is a dict.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "model.pt")
    >>> torch.save({"model": {"w": torch.ones(2)}, "info": {"size": 2}}, path)
    >>> read_stored_entry(path, "info"), read_stored_entry(path, "other")
    ({'size': 2}, None)
    """
    path = existing_path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    entry = _torch_load(path, mmap=True)
    entry = entry.get(key) if isinstance(entry, Mapping) else None
    return dict(entry) if isinstance(entry, Mapping) else None


def read_json(path):
    """A JSON file beside a checkpoint (``config.json``, ``fastast_config.json``) as plain data.

    Arguments
    ---------
    path : str or os.PathLike
        The file.

    Returns
    -------
    object
        The parsed JSON.

    Raises
    ------
    CheckpointError
        Naming the file, when it cannot be read or is not JSON.

    Example
    -------
    >>> path = getfixture("tmp_path") / "config.json"
    >>> _ = path.write_text('{"hidden_size": 192}')
    >>> read_json(path)
    {'hidden_size': 192}
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable JSON config: {err}") from err


def _looks_like_safetensors(path):
    """A safetensors file: an 8-byte little-endian header size, then a JSON header.

    A torch zip archive ("PK") or pickle stream (0x80) reads as a header
    size far larger than any file, so the formats cannot be confused.
    """
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    header_size = int.from_bytes(head[:8], "little")
    return 0 < header_size <= path.stat().st_size - 8 and head[8:] == b"{"


def _looks_like_torch_file(path):
    """torch.save writes a zip archive, or (legacy) a pickle stream.

    Checked first because torch.load reports random bytes as anything from
    an UnpicklingError to an IndexError.
    """
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO op


def _not_a_checkpoint(path, reason):
    return CheckpointError(
        f"{path} is not a torch checkpoint ({reason}); expected a state dict "
        "of tensors saved with torch.save, or a .safetensors file"
    )


def _torch_load(path, mmap=False):
    if not _looks_like_torch_file(path):
        raise _not_a_checkpoint(path, "neither a complete zip archive nor a pickle stream")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):
            reason = f"unpickling failed: {_first_line(err)}"
            raise _not_a_checkpoint(path, reason) from err
        raise CheckpointError(
            f"{path} holds pickled objects other than tensors, so "
            "torch.load(weights_only=True) refuses it; expected a state dict "
            "of tensors (re-save it with torch.save(model.state_dict(), path)). "
            f"torch said: {_first_line(err, 'Unsupported global')}"
        ) from err
    except Exception as err:  # torch raises many types for a corrupt file
        reason = f"{type(err).__name__}: {_first_line(err)}"
        raise _not_a_checkpoint(path, reason) from err


def _first_line(err, containing=None):
    lines = str(err).splitlines() or [""]
    if containing is not None:
        lines = [line.strip() for line in lines if containing in line] or lines
    return lines[0]


def _as_tensor_dict(obj, path):
    while isinstance(obj, Mapping):
        nested = [k for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path} holds {type(obj).__name__} {_short(obj)}, expected a "
            "non-empty state dict of tensors"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path} is not a state dict of tensors: key {key!r} holds "
                f"{type(value).__name__} {_short(value)}, expected a tensor"
            )
    return dict(obj)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_state_dict(state_dict, module, source="state dict"):
    """Compare a state dict with a module's; raise on any difference.

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
    CheckpointMismatchError
        One error listing missing keys, unexpected keys and shape
        mismatches (``name: checkpoint (a, b) vs model (c, d)``).

    Example
    -------
    >>> _check_state_dict({"weight": torch.zeros(2, 3)}, torch.nn.Linear(3, 2), "x.pth")
    Traceback (most recent call last):
    ...
    fastast_plugin.weights.state_dict.CheckpointMismatchError: Cannot load x.pth into Linear:
      missing keys: bias
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if state_dict[key].shape != expected[key].shape
    ]
    problems = [
        f"  {title}: {_listing(items)}"
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        name = type(module).__name__
        raise CheckpointMismatchError(f"Cannot load {source} into {name}:\n" + "\n".join(problems))


def _listing(items):
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" ... and {more} more" if more > 0 else "")


def load_strict(module, state_dict, source="state dict"):
    """Check a state dict against a module, then load it strictly.

    Arguments
    ---------
    module : torch.nn.Module
        The module to load into, in place.
    state_dict : dict
        Tensors named as in ``module.state_dict()``.
    source : str
        Where the tensors come from (a file path), for error messages.

    Returns
    -------
    torch.nn.Module
        The same module.

    Example
    -------
    >>> linear = torch.nn.Linear(3, 2)
    >>> sd = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
    >>> load_strict(linear, sd, "x.pth").weight.sum().item()
    6.0
    """
    _check_state_dict(state_dict, module, source)
    module.load_state_dict(state_dict, strict=True)
    return module
