"""Prepare VoxCeleb1 speaker identification (1,251 speakers) with the official ``iden_split.txt``.

Expected layout (``vox1_dev_wav.zip`` and ``vox1_test_wav.zip`` unpacked
into the same ``data_folder``, so that their ``wav/`` folders merge; the two
metadata files downloaded next to it)::

    data_folder/
        iden_split.txt      # "<split> <speaker>/<video>/<utterance>.wav" per line
        vox1_meta.csv       # optional: tab-separated VoxCeleb1 ID, VGGFace1 ID,
                            #   Gender, Nationality, Set (names of the speakers)
        wav/
            id10001/            # one folder per speaker (VoxCeleb1 ID)
                1zcIwhmdeo4/    # one folder per YouTube video
                    00001.wav   # 16 kHz mono utterances
                    ...

The audio needs a (free) registration and is not downloaded here; the
metadata files are public: ``IDEN_SPLIT_URL`` and ``META_URL``.

Splits exactly as ``iden_split.txt`` says: ``1`` = ``train``, ``2`` =
``valid``, ``3`` = ``test``. The label of an utterance is its speaker's
VoxCeleb1 ID (the folder name). A malformed line (a path not of the form
``idXXXXX/<video>/<utterance>.wav``), a split number other than 1 to 3 or
a path listed twice raise ``ValueError`` naming the file and the line. Files under
``wav/`` that the list does not name are ignored (their number is logged).

Every speaker of ``valid`` and ``test`` must have training utterances
(identification is closed-set): a speaker without any, also after bad files
were skipped, raises ``ValueError`` naming the speakers.

Files at any rate and channel count are kept (training mixes them to mono
and resamples them to ``sample_rate``). Bad files (listed but missing,
unreadable, empty, and with ``strict_audio=True`` not mono at
``sample_rate``) are checked from the file headers and written to
``<save_folder>/skipped.csv`` with the reason; with ``on_bad_file="skip"``
(default) they are left out of the manifests and named in a warning, with
``"raise"`` the preparation stops with a ``ValueError`` naming them.

Outputs in ``save_folder``: ``train.json``, ``valid.json``, ``test.json``
(``fastast_plugin.data.dataio`` manifests: ``wav``, ``label`` (= ``speaker``),
``speaker``, ``video``, ``duration`` (seconds) and, from ``vox1_meta.csv``,
``name``, ``gender``, ``nationality``, empty strings when the file is
absent or does not list the speaker), ``skipped.csv`` and
``voxceleb_prepare.json`` (the options of the last preparation; a second
call with the same options does nothing).

Reference: Nagrani, Chung and Zisserman, "VoxCeleb: a large-scale speaker
identification dataset", Interspeech 2017 (the identification split).

Authors
 * fastast developers 2026
"""

import csv
import json
import os
import re

from speechbrain.utils.logger import get_logger

from fastast_plugin.data.dataio import (
    audio_problem,
    clip_duration,
    handle_bad_files,
    prepared_with,
    write_manifest,
)

logger = get_logger(__name__)

IDEN_SPLIT_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/iden_split.txt"
META_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/vox1_meta.csv"
SPLITS = ("train", "valid", "test")
SPLIT_NUMBERS = {"1": "train", "2": "valid", "3": "test"}
META_COLUMNS = {
    "VoxCeleb1 ID": "speaker",
    "VGGFace1 ID": "name",
    "Gender": "gender",
    "Nationality": "nationality",
}
OPTIONS_FILE = "voxceleb_prepare.json"
_LINE = re.compile(r"^(\S+)\s+((id\d+)/([^/\s]+)/([^/\s]+\.wav))$")


def read_iden_split(path):
    """The utterances of each split of a VoxCeleb1 ``iden_split.txt``.

    Arguments
    ---------
    path : str
        The file: ``<split> <speaker>/<video>/<utterance>.wav`` per line,
        split 1 (train), 2 (validation) or 3 (test); blank lines are ignored.

    Returns
    -------
    dict
        Split name (``train``, ``valid``, ``test``) to the relative paths in
        file order.

    Example
    -------
    >>> path = getfixture("tmp_path") / "iden_split.txt"
    >>> _ = path.write_text("3 id10001/1zcIwhmdeo4/00001.wav\\n1 id10001/1zcIwhmdeo4/00002.wav\\n")
    >>> splits = read_iden_split(str(path))
    >>> splits["train"], splits["valid"], splits["test"]
    (['id10001/1zcIwhmdeo4/00002.wav'], [], ['id10001/1zcIwhmdeo4/00001.wav'])
    """
    splits = {split: [] for split in SPLITS}
    seen = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            match = _LINE.match(line)
            if match is None:
                raise ValueError(
                    f"{path}, line {number}: {line!r} is not '<split> "
                    "idXXXXX/<video>/<utterance>.wav'"
                )
            split_number, rel = match.group(1), match.group(2)
            if split_number not in SPLIT_NUMBERS:
                raise ValueError(
                    f"{path}, line {number}: split {split_number!r} of {rel} must be "
                    "1 (train), 2 (validation) or 3 (test)"
                )
            if rel in seen:
                raise ValueError(
                    f"{path}, line {number}: {rel} is listed twice (first on line {seen[rel]})"
                )
            seen[rel] = number
            splits[SPLIT_NUMBERS[split_number]].append(rel)
    if not seen:
        raise ValueError(f"{path} lists no utterances")
    return splits


def read_meta(path):
    """Speaker metadata from a VoxCeleb1 ``vox1_meta.csv`` (tab-separated).

    Arguments
    ---------
    path : str
        The file, with a header row naming at least ``VoxCeleb1 ID`` and
        ``VGGFace1 ID`` (``Gender`` and ``Nationality`` are read when
        present; other columns, such as ``Set``, are ignored).

    Returns
    -------
    dict
        VoxCeleb1 ID to ``{"name", "gender", "nationality"}``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "vox1_meta.csv"
    >>> _ = path.write_text(
    ...     "VoxCeleb1 ID\\tVGGFace1 ID\\tGender\\tNationality\\tSet\\n"
    ...     "id10001\\tA.J._Buckley\\tm\\tIreland\\tdev\\n"
    ... )
    >>> read_meta(str(path))
    {'id10001': {'name': 'A.J._Buckley', 'gender': 'm', 'nationality': 'Ireland'}}
    """
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path} is empty; expected a tab-separated header row")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in ("VoxCeleb1 ID", "VGGFace1 ID") if name not in header]
    if missing:
        raise ValueError(
            f"{path} has no column(s) {missing} in its header {header}; expected the "
            f"tab-separated vox1_meta.csv ({META_URL})"
        )
    columns = {field: header.index(name) for name, field in META_COLUMNS.items() if name in header}
    meta = {}
    for number, row in enumerate(rows[1:], 2):
        row = [value.strip() for value in row]
        if not any(row):
            continue
        if len(row) <= max(columns["speaker"], columns["name"]):
            raise ValueError(f"{path}, line {number}: too few tab-separated columns: {row}")
        speaker = row[columns["speaker"]]
        meta[speaker] = {
            field: row[index] if index < len(row) else ""
            for field, index in columns.items()
            if field != "speaker"
        }
        for field in ("gender", "nationality"):
            meta[speaker].setdefault(field, "")
    return meta


def prepare_voxceleb(
    data_folder,
    save_folder,
    split_file=None,
    meta_file=None,
    skip_prep=False,
    on_bad_file="skip",
    sample_rate=16000,
    strict_audio=False,
):
    """Write train / valid / test manifests for VoxCeleb1 speaker identification.

    Arguments
    ---------
    data_folder : str
        The folder holding ``wav/`` (see the module docstring).
    save_folder : str
        Where manifests and reports go.
    split_file : str, optional
        The official split list; None: ``<data_folder>/iden_split.txt``.
    meta_file : str, optional
        ``vox1_meta.csv``; None: ``<data_folder>/vox1_meta.csv`` if it
        exists (without it the names are empty strings). A file given here
        must exist.
    skip_prep : bool
        Only return the manifest paths.
    on_bad_file : str
        ``"skip"`` or ``"raise"`` (see the module docstring).
    sample_rate : int
        Sampling rate of training.
    strict_audio : bool
        True: files not mono at ``sample_rate`` are bad files (skipped or raised,
        see ``on_bad_file``). False: any rate and channel count is kept (read as mono at ``sample_rate``).

    Returns
    -------
    dict
        Split name (``train``, ``valid``, ``test``) to manifest path.

    Example
    -------
    >>> from fastast_plugin.data.synthetic import write_voxceleb
    >>> tmp = getfixture("tmpdir")
    >>> _ = write_voxceleb(str(tmp / "vox1"), speakers=2)
    >>> manifests = prepare_voxceleb(str(tmp / "vox1"), str(tmp / "save"))
    >>> sorted(manifests)
    ['test', 'train', 'valid']
    """
    manifests = {s: os.path.join(save_folder, f"{s}.json") for s in SPLITS}
    if skip_prep:
        return manifests
    split_file = split_file or os.path.join(data_folder, "iden_split.txt")
    default_meta = os.path.join(data_folder, "vox1_meta.csv")
    if meta_file is None and os.path.isfile(default_meta):
        meta_file = default_meta
    options = {
        "data_folder": os.path.abspath(data_folder),
        "split_file": os.path.abspath(split_file),
        "meta_file": os.path.abspath(meta_file) if meta_file else None,
        "on_bad_file": on_bad_file,
        "sample_rate": sample_rate,
        "strict_audio": strict_audio,
    }
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if prepared_with(options_path, options, manifests.values()):
        logger.info("VoxCeleb1 already prepared in %s, skipping", save_folder)
        return manifests

    wav_folder = _check_layout(data_folder, split_file, meta_file)
    listed = read_iden_split(split_file)
    meta = read_meta(meta_file) if meta_file else {}

    bad = {}
    for split in SPLITS:
        for rel in listed[split]:
            problem = audio_problem(
                os.path.join(wav_folder, rel), sample_rate if strict_audio else None
            )
            if problem:
                bad[os.path.join(wav_folder, rel)] = problem
    skipped = handle_bad_files(bad, os.path.join(save_folder, "skipped.csv"), on_bad_file)

    splits = {split: {} for split in SPLITS}
    for split in SPLITS:
        for rel in listed[split]:
            path = os.path.join(wav_folder, rel)
            if path in skipped:
                continue
            speaker, video, _ = rel.split("/")
            info = meta.get(speaker, {})
            splits[split][rel[: -len(".wav")]] = {
                "wav": os.path.abspath(path),
                "label": speaker,
                "speaker": speaker,
                "video": video,
                "duration": clip_duration(path),
                "name": info.get("name", ""),
                "gender": info.get("gender", ""),
                "nationality": info.get("nationality", ""),
            }
    _check_closed_set(splits, split_file, skipped)
    unnamed = sorted({e["speaker"] for e in splits["train"].values()} - set(meta))
    if meta_file and unnamed:
        logger.warning(
            "%d speaker(s) are not in %s (empty names): %s",
            len(unnamed),
            meta_file,
            unnamed[:10],
        )
    _log_unlisted(wav_folder, listed)
    for split in SPLITS:
        write_manifest(splits[split], manifests[split])
    with open(options_path, "w") as f:
        json.dump(options, f, indent=1)
    logger.info(
        "VoxCeleb1: %d speakers; %s utterances; %d skipped",
        len({e["speaker"] for e in splits["train"].values()}),
        ", ".join(f"{s} {len(splits[s])}" for s in SPLITS),
        len(skipped),
    )
    return manifests


def _check_layout(data_folder, split_file, meta_file):
    """The ``wav`` folder; raise naming what is missing."""
    wav_folder = os.path.join(data_folder, "wav")
    if not os.path.isdir(wav_folder):
        raise FileNotFoundError(
            f"{wav_folder} not found: unpack vox1_dev_wav.zip and vox1_test_wav.zip "
            f"into {data_folder!r} (each holds a wav/ folder of idXXXXX speaker folders)"
        )
    if not os.path.isfile(split_file):
        raise FileNotFoundError(
            f"{split_file} not found: download the official identification split "
            f"from {IDEN_SPLIT_URL} (or set split_file)"
        )
    if meta_file and not os.path.isfile(meta_file):
        raise FileNotFoundError(
            f"meta_file {meta_file} not found (download {META_URL}, or leave it unset)"
        )
    return wav_folder


def _check_closed_set(splits, split_file, skipped):
    """Raise if a speaker of valid / test has no training utterance."""
    train = {e["speaker"] for e in splits["train"].values()}
    absent = {
        split: sorted({e["speaker"] for e in splits[split].values()} - train)
        for split in ("valid", "test")
    }
    absent = {split: names for split, names in absent.items() if names}
    if not absent:
        return
    listing = "; ".join(f"{split}: {names[:20]} ({len(names)})" for split, names in absent.items())
    reason = " (some training files were skipped as bad, see skipped.csv)" if skipped else ""
    raise ValueError(
        f"Speakers with no training utterance in {split_file}{reason}: {listing}. "
        "Speaker identification is closed-set: every speaker needs training data"
    )


def _log_unlisted(wav_folder, listed):
    """Log how many ``.wav`` files under ``wav/`` the split list does not name."""
    names = {rel for files in listed.values() for rel in files}
    unlisted = 0
    for root, _, files in os.walk(wav_folder):
        for name in files:
            if name.endswith(".wav"):
                rel = os.path.relpath(os.path.join(root, name), wav_folder).replace(os.sep, "/")
                unlisted += rel not in names
    if unlisted:
        logger.info(
            "%d .wav file(s) under %s are not in the split list: ignored", unlisted, wav_folder
        )
