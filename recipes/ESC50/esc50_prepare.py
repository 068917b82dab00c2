"""Prepare ESC-50 for 5-fold cross-validation, resampled once to 16 kHz.

Expected layout (the ``ESC-50-master`` folder of the GitHub archive)::

    data_folder/
        meta/esc50.csv   # filename,fold,target,category,esc10,src_file,take
        audio/<fold>-<src_file>-<take>-<target>.wav   # 5 s, 44.1 kHz, mono

Folds: 1 to 5, from ``meta/esc50.csv``. ESC-50 puts every clip cut from the
same source recording (``src_file``) in the same fold, so no source leaks
between a fold's training and test sets; the preparation checks it (a
``src_file`` in two folds raises ``ValueError``) and checks the manifests it
writes.

Resampling: as AST (which resamples with sox beforehand), every clip is
mixed to mono and resampled once from its rate (44.1 kHz in ESC-50) to
``sample_rate`` with ``fastast_plugin.data.audio.load_audio`` (windowed sinc) and written as 16-bit
PCM into ``resampled_folder``; files already there and newer than their
source are reused, so training reads 16 kHz audio and re-runs are cheap.

Bad files (unreadable, empty, listed in the CSV but missing, and with
``strict_audio=True`` not mono at ``source_sample_rate``) are written to ``<save_folder>/skipped.csv``
with the reason; ``on_bad_file="skip"`` (default) leaves them out and names
them in a warning, ``"raise"`` stops with a ``ValueError`` naming them.

Outputs in ``save_folder``: ``fold<k>_train.json`` (the other folds) and
``fold<k>_test.json`` (fold ``k``) for every fold, ``skipped.csv`` and
``esc50_prepare.json`` (the options of the last preparation; a second call
with the same options does nothing).

Authors
 * fastast developers 2026
"""

import csv
import json
import os

import soundfile as sf
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.dataio import (
    audio_problem,
    fetch_dataset,
    handle_bad_files,
    prepared_with,
    read_manifest,
    write_manifest,
)

logger = get_logger(__name__)

URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
FOLDS = (1, 2, 3, 4, 5)
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
OPTIONS_FILE = "esc50_prepare.json"


def prepare_esc50(
    data_folder,
    save_folder,
    resampled_folder,
    sample_rate=16000,
    source_sample_rate=44100,
    download=False,
    skip_prep=False,
    on_bad_file="skip",
    strict_audio=False,
):
    """Write the train / test manifests of every ESC-50 fold.

    Arguments
    ---------
    data_folder : str
        The ``ESC-50-master`` folder.
    save_folder : str
        Where manifests and reports go.
    resampled_folder : str
        Where the resampled clips go.
    sample_rate : int
        Target sampling rate.
    source_sample_rate : int
        Sampling rate of the original clips (44.1 kHz in ESC-50), checked
        with ``strict_audio``.
    download : bool
        Download and unpack the archive when ``data_folder`` is missing or
        empty.
    skip_prep : bool
        Only return the manifest paths (folds read from ``esc50.csv``).
    on_bad_file : str
        ``"skip"`` or ``"raise"`` (see the module docstring).
    strict_audio : bool
        True: files not mono at ``source_sample_rate`` are bad files (skipped or raised,
        see ``on_bad_file``). False: any rate and channel count is kept (mixed down and resampled).

    Returns
    -------
    dict
        Fold number to ``{"train": path, "test": path}``.

    Example
    -------
    >>> from fastast_plugin.data.synthetic import write_esc50
    >>> tmp = getfixture("tmpdir")
    >>> _ = write_esc50(str(tmp / "esc"), ("dog", "rain"), duration=0.2)
    >>> manifests = prepare_esc50(str(tmp / "esc"), str(tmp / "save"), str(tmp / "16k"))
    >>> sorted(manifests), sorted(manifests[1])
    ([1, 2, 3, 4, 5], ['test', 'train'])
    """
    manifests = {
        fold: {
            split: os.path.join(save_folder, f"fold{fold}_{split}.json")
            for split in ("train", "test")
        }
        for fold in FOLDS
    }
    if skip_prep:
        return manifests
    _ensure_dataset(data_folder, download)
    rows = _read_meta(data_folder)
    folds = sorted({row["fold"] for row in rows})
    if folds != list(FOLDS):
        raise ValueError(
            f"{os.path.join(data_folder, 'meta', 'esc50.csv')} has folds {folds}; "
            f"ESC-50 has folds {list(FOLDS)}"
        )
    options = {
        "data_folder": os.path.abspath(data_folder),
        "resampled_folder": os.path.abspath(resampled_folder),
        "sample_rate": sample_rate,
        "source_sample_rate": source_sample_rate,
        "on_bad_file": on_bad_file,
        "strict_audio": strict_audio,
    }
    paths = [p for fold in manifests.values() for p in fold.values()]
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if prepared_with(options_path, options, paths):
        logger.info("ESC-50 already prepared in %s, skipping", save_folder)
        return manifests

    _check_sources(rows, data_folder)
    audio_folder = os.path.join(data_folder, "audio")
    bad = {}
    for row in rows:
        path = os.path.join(audio_folder, row["filename"])
        problem = audio_problem(path, source_sample_rate if strict_audio else None)
        if problem:
            bad[path] = problem
    skipped = handle_bad_files(bad, os.path.join(save_folder, "skipped.csv"), on_bad_file)

    entries = {}
    os.makedirs(resampled_folder, exist_ok=True)
    for row in rows:
        source = os.path.join(audio_folder, row["filename"])
        if source in skipped:
            continue
        target = os.path.join(resampled_folder, row["filename"])
        frames = _resample_file(source, target, sample_rate)
        entries[row["filename"][: -len(".wav")]] = {
            "wav": os.path.abspath(target),
            "label": row["category"],
            "target": row["target"],
            "fold": row["fold"],
            "src_file": row["src_file"],
            "duration": frames / sample_rate,
        }
    for fold, files in manifests.items():
        for split, path in files.items():
            in_test = split == "test"
            write_manifest(
                {k: e for k, e in entries.items() if (e["fold"] == fold) == in_test},
                path,
            )
    check_no_source_leak(manifests)
    with open(options_path, "w") as f:
        json.dump(options, f, indent=1)
    logger.info(
        "ESC-50: %d clips in %d folds, %d categories; %d skipped",
        len(entries),
        len(folds),
        len({e["label"] for e in entries.values()}),
        len(skipped),
    )
    return manifests


def check_no_source_leak(manifests):
    """Raise if a source recording is in both the train and test manifests of a fold.

    Arguments
    ---------
    manifests : dict
        Fold to ``{"train": path, "test": path}``.

    Example
    -------
    >>> from fastast_plugin.data.dataio import write_manifest
    >>> tmp = getfixture("tmpdir")
    >>> write_manifest({"a": {"src_file": "1"}}, str(tmp / "tr.json"))
    >>> write_manifest({"b": {"src_file": "1"}}, str(tmp / "te.json"))
    >>> check_no_source_leak({1: {"train": str(tmp / "tr.json"), "test": str(tmp / "te.json")}})
    Traceback (most recent call last):
    ...
    ValueError: fold 1: source recordings in both train and test: ['1']
    """
    for fold, files in manifests.items():
        sources = {
            split: {e["src_file"] for e in read_manifest(path).values()}
            for split, path in files.items()
        }
        shared = sorted(sources["train"] & sources["test"])
        if shared:
            raise ValueError(
                f"fold {fold}: source recordings in both train and test: {shared[:10]}"
            )


def _ensure_dataset(data_folder, download):
    """Download and unpack ESC-50 if ``data_folder`` is missing or empty; check its layout."""
    fetch_dataset(data_folder, URL, "ESC-50 (its ESC-50-master folder)", download, "ESC-50-master")
    meta = os.path.join(data_folder, "meta", "esc50.csv")
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"{meta} not found: {data_folder!r} is not an ESC-50-master folder")


def _read_meta(data_folder):
    """Rows of ``meta/esc50.csv`` with ``fold`` as int, checked."""
    meta = os.path.join(data_folder, "meta", "esc50.csv")
    with open(meta, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{meta} lacks columns {missing}; expected {list(COLUMNS)}, got {reader.fieldnames}"
            )
        rows = list(reader)
    if not rows:
        raise ValueError(f"{meta} has no clips")
    categories = {}
    for line, row in enumerate(rows, start=2):
        try:
            row["fold"] = int(row["fold"])
        except ValueError:
            raise ValueError(
                f"{meta} line {line}: fold must be an integer, got {row['fold']!r}"
            ) from None
        if categories.setdefault(row["target"], row["category"]) != row["category"]:
            raise ValueError(
                f"{meta} line {line}: target {row['target']} is "
                f"{categories[row['target']]!r} elsewhere, here {row['category']!r}"
            )
    return rows


def _check_sources(rows, data_folder):
    """Raise if clips of one source recording are in different folds."""
    folds = {}
    for row in rows:
        folds.setdefault(row["src_file"], set()).add(row["fold"])
    leaking = {src: sorted(f) for src, f in folds.items() if len(f) > 1}
    if leaking:
        sample = dict(sorted(leaking.items())[:10])
        raise ValueError(
            f"{os.path.join(data_folder, 'meta', 'esc50.csv')}: {len(leaking)} source "
            f"recording(s) span several folds (src_file: folds): {sample}; their "
            "clips would leak between training and test"
        )


def _resample_file(source, target, sample_rate):
    """Resample ``source`` into ``target`` unless an up-to-date copy exists; return its frames."""
    if os.path.isfile(target) and os.path.getmtime(target) >= os.path.getmtime(source):
        info = sf.info(target)
        if info.samplerate == sample_rate and info.frames > 0:
            return info.frames
    wav = load_audio(source, sample_rate)
    tmp = f"{target}.tmp.wav"
    sf.write(tmp, wav.clamp(-1, 1).numpy(), sample_rate, subtype="PCM_16")
    os.replace(tmp, target)
    return wav.shape[0]
