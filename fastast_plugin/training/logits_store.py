"""The teacher-logits store on disk: its files, read and written in one place.

A store is a folder of three files:

* ``logits.npy`` (``LOGITS_FILE``): float16 or float32 ``[clips, classes]``,
  read memory-mapped with ``allow_pickle=False``;
* ``index.json`` (``INDEX_FILE``): ``{clip id: row}``, one id per row;
* ``meta.json`` (``META_FILE``): how the store was made (free-form record).

``write_store`` writes all three to temporary names first and only then
renames them into place, so a write that fails (a full disk, an
interrupted job) leaves the previous store whole. ``read_store`` checks
what it reads and names the file at fault. ``fastast precompute``
(``fastast_plugin.training.precompute``) and the EfficientAT import
(``fastast_plugin.training.efficientat``) write stores;
``fastast_plugin.training.teachers.LogitsStore`` reads them.

Authors
 * fastast developers 2026
"""

import json
import os

import numpy as np

__all__ = [
    "INDEX_FILE",
    "LOGITS_FILE",
    "META_FILE",
    "read_logits_array",
    "read_store",
    "write_store",
]

LOGITS_FILE = "logits.npy"
INDEX_FILE = "index.json"
META_FILE = "meta.json"
_PARTIAL_SUFFIX = ".partial"


def write_store(folder, logits, ids, meta):
    """Write a logits store; a failed write leaves the store that was there.

    Arguments
    ---------
    folder : str or os.PathLike
        The store folder (created).
    logits : numpy.ndarray
        ``[clips, classes]`` float array, stored in its dtype.
    ids : sequence
        The clip id of each row (stored as strings, each once).
    meta : dict
        JSON-serialisable record of how the store was made.

    Returns
    -------
    str
        The folder.

    Example
    -------
    >>> folder = write_store(getfixture("tmp_path") / "s", np.eye(2, dtype=np.float16),
    ...                      ["a", "b"], {"teacher": "none"})
    >>> logits, index = read_store(folder)
    >>> logits.tolist(), index
    ([[1.0, 0.0], [0.0, 1.0]], {'a': 0, 'b': 1})
    """
    folder = os.fspath(folder)
    ids = [str(clip_id) for clip_id in ids]
    if logits.ndim != 2 or len(ids) != logits.shape[0] or len(set(ids)) != len(ids):
        raise ValueError(
            f"logits store {folder!r}: expected one distinct clip id per row of a "
            f"[clips, classes] array, got {len(ids)} ids ({len(set(ids))} distinct) for "
            f"shape {tuple(logits.shape)}"
        )
    os.makedirs(folder, exist_ok=True)
    writers = {
        LOGITS_FILE: ("wb", lambda f: np.save(f, logits, allow_pickle=False)),
        INDEX_FILE: ("w", lambda f: json.dump({k: row for row, k in enumerate(ids)}, f)),
        META_FILE: ("w", lambda f: json.dump(meta, f, indent=1)),
    }
    partial = {name: os.path.join(folder, name + _PARTIAL_SUFFIX) for name in writers}
    try:
        for name, (mode, write) in writers.items():
            with open(partial[name], mode) as f:
                write(f)
    except BaseException:
        for path in partial.values():
            if os.path.exists(path):
                os.remove(path)
        raise
    for name, path in partial.items():
        os.replace(path, os.path.join(folder, name))
    return folder


def read_store(folder):
    """The logits and index of a store, checked against each other.

    Arguments
    ---------
    folder : str or os.PathLike
        The store folder.

    Returns
    -------
    logits : numpy.ndarray
        Memory-mapped ``[clips, classes]`` float array.
    index : dict
        Clip id to row, one id per row.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> np.save(folder / "logits.npy", np.eye(2, dtype=np.float32))
    >>> _ = (folder / "index.json").write_text('{"a": 0, "b": 1}')
    >>> read_store(folder)[1]
    {'a': 0, 'b': 1}
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, LOGITS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"teacher logits file {path!r} not found; write the store with "
            "`fastast precompute ...` (python -m fastast_plugin.training.precompute)"
        )
    logits = read_logits_array(path)
    return logits, _read_index(os.path.join(folder, INDEX_FILE), logits.shape[0])


def read_logits_array(path):
    """A ``[clips, classes]`` float ``.npy`` array, memory-mapped; pickled objects refused.

    Arguments
    ---------
    path : str or os.PathLike
        The ``.npy`` file (a store's ``logits.npy``, or EfficientAT's
        released ensemble logits).

    Returns
    -------
    numpy.ndarray
        Read-only memory map.

    Example
    -------
    >>> path = getfixture("tmp_path") / "l.npy"
    >>> np.save(path, np.zeros((3, 2), np.float16))
    >>> read_logits_array(path).shape
    (3, 2)
    """
    path = os.fspath(path)
    try:
        logits = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"{path} is not a readable .npy array of numbers (pickled objects are refused): {err}"
        ) from err
    if logits.ndim != 2 or logits.dtype.kind != "f":
        raise ValueError(
            f"{path} must hold a float array [clips, classes], got dtype {logits.dtype} "
            f"and shape {logits.shape}"
        )
    return logits


def _read_index(path, num_rows):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher logits index {path!r} not found")
    try:
        with open(path) as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"teacher logits index {path!r} is not valid JSON: {err}") from err
    if not isinstance(index, dict):
        raise ValueError(
            f"teacher logits index {path!r} must be a JSON object {{clip id: row}}, "
            f"got {type(index).__name__}"
        )
    rows = list(index.values())
    bad = [
        (k, v)
        for k, v in index.items()
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_rows
    ]
    if bad:
        raise ValueError(
            f"teacher logits index {path!r}: rows must be integers in [0, {num_rows}) "
            f"(the array has {num_rows} rows), got e.g. {bad[:3]}"
        )
    if len(index) != num_rows or len(set(rows)) != len(rows):
        raise ValueError(
            f"teacher logits index {path!r} maps {len(index)} ids to "
            f"{len(set(rows))} distinct rows, but the array has {num_rows} rows; "
            "expected one id per row"
        )
    return index
