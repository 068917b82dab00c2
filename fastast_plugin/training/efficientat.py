"""Import EfficientAT's released teacher-ensemble logits into a ``LogitsStore``.

EfficientAT (Schmid et al., "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation", ICASSP 2023;
https://github.com/fschmid56/EfficientAT) distils its MobileNets on
AudioSet from the precomputed logits of a PaSST ensemble, released as one
``[clips, 527]`` ``.npy`` array and a ``fname_to_index.pkl`` pickle mapping
each clip's file name to its row. ``_import_ensemble_logits`` turns the two
into a store that ``fastast_plugin.training.teachers.LogitsStore`` reads (and the
AudioSet ``tome_ast_kd.yaml`` takes as ``teacher_logits_dir``), keyed by our
clip ids (the YouTube ids, found in the file names with
``fastast_plugin.data.audioset.parse_clip_name``).

A pickle can run code when loaded. A plain dict of ``str -> int`` needs no
global at all, so ``_read_fname_to_index`` reads the file with an
``Unpickler`` whose ``find_class`` refuses every global: a file with any
class, function or ``__reduce__`` payload is refused, naming the file,
before anything in it runs. ``pickle.load`` is never used. The ``.npy`` is
read with ``allow_pickle=False``.

Usage::

    python -m fastast_plugin.training.efficientat passt_enemble_logits.npy fname_to_index.pkl \\
        results/AudioSet/passt_logits --manifest results/AudioSet/prepared/train.json

Authors
 * fastast developers 2026
"""

import argparse
import json
import os
import pickle

import numpy as np
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audioset import parse_clip_name
from fastast_plugin.data.dataio import read_manifest
from fastast_plugin.training.logits_store import read_logits_array, write_store

__all__ = ["main"]

logger = get_logger(__name__)


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global (a class, function or ``__reduce__`` callable)."""


class _RefusingUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global (class, function, ``__reduce__`` callable).

    Plain containers and numbers, strings and bytes load; anything that
    would import or call something raises ``pickle.UnpicklingError``.

    Example
    -------
    >>> import io
    >>> _RefusingUnpickler(io.BytesIO(pickle.dumps({"a.wav": 3}))).load()
    {'a.wav': 3}
    >>> _RefusingUnpickler(io.BytesIO(pickle.dumps(print))).load()
    Traceback (most recent call last):
    ...
    fastast_plugin.training.efficientat._RefusedGlobal: refused global builtins.print: only plain data may be unpickled
    """

    def find_class(self, module, name):
        """Refuse every global: EfficientAT's files hold only plain data."""
        raise _RefusedGlobal(f"refused global {module}.{name}: only plain data may be unpickled")


def _read_fname_to_index(path):
    """EfficientAT's ``fname_to_index.pkl``, read without running any code: ``{file name: row}``.

    Arguments
    ---------
    path : str
        The pickle.

    Returns
    -------
    dict
        File name to integer row.

    Raises
    ------
    ValueError
        Naming the file, when it holds any global (refused before it could
        run), is not a pickle, or is not a dict of ``str -> int``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "fname_to_index.pkl"
    >>> _ = path.write_bytes(pickle.dumps({"Y--PJHxphWEs_30.000_40.000.wav": 0}))
    >>> _read_fname_to_index(path)
    {'Y--PJHxphWEs_30.000_40.000.wav': 0}
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            mapping = _RefusingUnpickler(f).load()
    except _RefusedGlobal as err:
        raise ValueError(
            f"{path}: refused to unpickle ({err}); a fname_to_index file must be a "
            "plain dict of str -> int"
        ) from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"{path} is not a readable pickle: {err!r}") from err
    if not isinstance(mapping, dict):
        raise ValueError(f"{path} must hold a dict of str -> int, got {type(mapping).__name__}")
    bad = [
        (k, v)
        for k, v in mapping.items()
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int)
    ]
    if bad:
        raise ValueError(f"{path} must map file names (str) to rows (int), got e.g. {bad[:3]}")
    return mapping


def _import_ensemble_logits(
    logits_file, fname_to_index_file, out_dir, clip_ids=None, dtype="float16"
):
    """Write a ``LogitsStore`` folder from EfficientAT's ensemble logits and file-name index.

    Arguments
    ---------
    logits_file : str
        The ``.npy`` array ``[clips, classes]`` (read with
        ``allow_pickle=False``, memory-mapped).
    fname_to_index_file : str
        The ``fname_to_index.pkl`` (``_read_fname_to_index``).
    out_dir : str
        The store folder to write (``fastast_plugin.training.logits_store``).
    clip_ids : iterable of str, optional
        Keep only these clip ids (e.g. a prepared training manifest's keys);
        the counts of unmatched names and of ids without logits go to
        ``meta.json``.
    dtype : str
        Dtype of the stored logits.

    Returns
    -------
    dict
        The ``meta.json`` record (counts of rows kept, names not parsed,
        names not among ``clip_ids``, ``clip_ids`` without logits).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> np.save(tmp / "l.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    >>> names = {"Y--PJHxphWEs_30.000_40.000.mp3": 2, "YabcdefghijK.mp3": 0, "bad": 1}
    >>> _ = (tmp / "f.pkl").write_bytes(pickle.dumps(names))
    >>> meta = _import_ensemble_logits(tmp / "l.npy", tmp / "f.pkl", tmp / "store")
    >>> meta["rows"], meta["unparsed_names"]
    (2, ['bad'])
    >>> from fastast_plugin.training.teachers import LogitsStore
    >>> LogitsStore(tmp / "store")(None, None, ["--PJHxphWEs"])[0].tolist()
    [[4.0, 5.0]]
    """
    logits_file = os.fspath(logits_file)
    logits = read_logits_array(logits_file)
    mapping = _read_fname_to_index(fname_to_index_file)
    wanted = None if clip_ids is None else set(map(str, clip_ids))
    rows, ids, unparsed, unwanted = [], [], [], 0
    seen = set()
    for name, row in sorted(mapping.items(), key=lambda item: item[1]):
        if not 0 <= row < logits.shape[0]:
            raise ValueError(
                f"{fname_to_index_file}: {name!r} maps to row {row}, but {logits_file} "
                f"has {logits.shape[0]} rows"
            )
        clip = parse_clip_name(name)
        if clip is None:
            unparsed.append(name)
            continue
        if wanted is not None and clip.ytid not in wanted:
            unwanted += 1
            continue
        if clip.ytid in seen:
            raise ValueError(f"{fname_to_index_file}: clip {clip.ytid} has several rows")
        seen.add(clip.ytid)
        rows.append(row)
        ids.append(clip.ytid)
    if not rows:
        raise ValueError(
            f"no file name of {fname_to_index_file} matched a clip id (names not parsed: "
            f"{unparsed[:3]})"
        )
    meta = {
        "source": logits_file,
        "fname_to_index": os.fspath(fname_to_index_file),
        "rows": len(rows),
        "classes": int(logits.shape[1]),
        "unparsed_names": unparsed[:100],
        "unparsed_count": len(unparsed),
        "names_not_in_clip_ids": unwanted,
        "clip_ids_without_logits": None if wanted is None else len(wanted - seen),
    }
    write_store(out_dir, np.asarray(logits[rows], dtype=dtype), ids, meta)
    logger.info("Imported %d teacher logit rows from %s into %s", len(rows), logits_file, out_dir)
    return meta


def main(argv=None):
    """Command line: ``python -m fastast_plugin.training.efficientat LOGITS PKL OUT [--manifest M]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logits", help="the ensemble logits .npy")
    parser.add_argument("fname_to_index", help="fname_to_index.pkl")
    parser.add_argument("out_dir", help="LogitsStore folder to write")
    parser.add_argument("--manifest", help="keep only the clips of this prepared manifest")
    args = parser.parse_args(argv)
    ids = read_manifest(args.manifest).keys() if args.manifest else None
    meta = _import_ensemble_logits(args.logits, args.fname_to_index, args.out_dir, ids)
    print(json.dumps({k: v for k, v in meta.items() if k != "unparsed_names"}, indent=1))


if __name__ == "__main__":
    main()
