"""Prepare Speech Commands V2 (35 words) as AST does: the official validation and test lists.

Expected layout (``speech_commands_v0.02.tar.gz`` unpacked into
``data_folder``)::

    data_folder/
        validation_list.txt      # e.g. "right/bb05582b_nohash_3.wav", one per line
        testing_list.txt
        _background_noise_/      # ignored (folders starting with "_")
        backward/  bed/  ...  zero/    # one folder per word, 35 in V2
            <speaker>_nohash_<n>.wav   # 16 kHz mono, at most 1 s

Splits: ``valid`` = the files in ``validation_list.txt``, ``test`` = those in
``testing_list.txt``, ``train`` = every other ``.wav`` in a word folder.
Speakers (the file name before ``_nohash_``) are kept apart by the official
lists; the preparation checks it and raises if a speaker is in two splits
(``check_speakers=False`` only logs it).

Files at any rate and channel count are kept (training mixes them to mono
and resamples them to ``sample_rate``). Bad files (unreadable, empty, listed
but missing, and with ``strict_audio=True`` not mono at ``sample_rate``) are
checked from the file headers and written to
``<save_folder>/skipped.csv`` with the reason; with ``on_bad_file="skip"``
(default) they are left out of the manifests and named in a warning, with
``"raise"`` the preparation stops with a ``ValueError`` naming them.

Outputs in ``save_folder``: ``train.json``, ``valid.json``, ``test.json``
(``fastast_plugin.data.dataio`` manifests with ``wav``, ``label``, ``speaker``,
``duration``), ``skipped.csv`` and ``sc_prepare.json`` (the options of the
last preparation; a second call with the same options does nothing).

Authors
 * fastast developers 2026
"""

import json
import os

from speechbrain.utils.logger import get_logger

from fastast_plugin.data.dataio import (
    audio_problem,
    clip_duration,
    fetch_dataset,
    handle_bad_files,
    prepared_with,
    write_manifest,
)

logger = get_logger(__name__)

URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPLITS = ("train", "valid", "test")
LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
OPTIONS_FILE = "sc_prepare.json"


def speaker_of(filename):
    """Speaker id of a Speech Commands file: the name before ``_nohash_``.

    Arguments
    ---------
    filename : str
        File name or relative path.

    Returns
    -------
    str
        The speaker id.

    Example
    -------
    >>> speaker_of("right/bb05582b_nohash_3.wav")
    'bb05582b'
    """
    return os.path.basename(filename).split("_nohash_")[0]


def prepare_speech_commands(
    data_folder,
    save_folder,
    download=True,
    skip_prep=False,
    on_bad_file="skip",
    check_speakers=True,
    sample_rate=16000,
    strict_audio=False,
):
    """Write train / valid / test manifests for Speech Commands V2.

    Arguments
    ---------
    data_folder : str
        The unpacked ``speech_commands_v0.02`` folder.
    save_folder : str
        Where manifests and reports go.
    download : bool
        Download and unpack the archive when ``data_folder`` is missing or
        empty.
    skip_prep : bool
        Only return the manifest paths.
    on_bad_file : str
        ``"skip"`` or ``"raise"`` (see the module docstring).
    check_speakers : bool
        Raise if a speaker appears in two splits (else log a warning).
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
    >>> from fastast_plugin.data.synthetic import write_speech_commands
    >>> tmp = getfixture("tmpdir")
    >>> _ = write_speech_commands(str(tmp / "sc"), words=("yes", "no"), speakers=10)
    >>> manifests = prepare_speech_commands(str(tmp / "sc"), str(tmp / "save"))
    >>> sorted(manifests)
    ['test', 'train', 'valid']
    """
    manifests = {s: os.path.join(save_folder, f"{s}.json") for s in SPLITS}
    if skip_prep:
        return manifests
    options = {
        "data_folder": os.path.abspath(data_folder),
        "on_bad_file": on_bad_file,
        "check_speakers": check_speakers,
        "sample_rate": sample_rate,
        "strict_audio": strict_audio,
    }
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if prepared_with(options_path, options, manifests.values()):
        logger.info("Speech Commands already prepared in %s, skipping", save_folder)
        return manifests

    _ensure_dataset(data_folder, download)
    words = sorted(
        name
        for name in os.listdir(data_folder)
        if os.path.isdir(os.path.join(data_folder, name)) and not name.startswith("_")
    )
    if not words:
        raise ValueError(
            f"{data_folder} has no word folders; expected the unpacked "
            f"speech_commands_v0.02 layout (see {__file__})"
        )
    listed = {split: _read_list(data_folder, name) for split, name in LISTS.items()}
    both = listed["valid"] & listed["test"]
    if both:
        raise ValueError(
            f"{len(both)} file(s) are in both {LISTS['valid']} and "
            f"{LISTS['test']} in {data_folder}: {sorted(both)[:10]}"
        )
    files = {
        f"{word}/{name}"
        for word in words
        for name in os.listdir(os.path.join(data_folder, word))
        if name.endswith(".wav")
    }
    outside = sorted(f for f in listed["valid"] | listed["test"] if f.split("/")[0] not in words)
    if outside:
        raise ValueError(
            f"The lists in {data_folder} name files outside the word folders: {outside[:10]}"
        )

    bad = {}
    for rel in sorted(files | listed["valid"] | listed["test"]):
        problem = audio_problem(
            os.path.join(data_folder, rel), sample_rate if strict_audio else None
        )
        if problem:
            bad[os.path.join(data_folder, rel)] = problem
    skipped = handle_bad_files(bad, os.path.join(save_folder, "skipped.csv"), on_bad_file)

    splits = {split: {} for split in SPLITS}
    for rel in sorted(files | listed["valid"] | listed["test"]):
        path = os.path.join(data_folder, rel)
        if path in skipped:
            continue
        split = "test" if rel in listed["test"] else "valid" if rel in listed["valid"] else "train"
        word = rel.split("/")[0]
        splits[split][rel[: -len(".wav")]] = {
            "wav": os.path.abspath(path),
            "label": word,
            "speaker": speaker_of(rel),
            "duration": clip_duration(path),
        }
    _check_speakers(splits, check_speakers)
    for split in SPLITS:
        write_manifest(splits[split], manifests[split])
    with open(options_path, "w") as f:
        json.dump(options, f, indent=1)
    logger.info(
        "Speech Commands: %d words; %s clips; %d skipped",
        len(words),
        ", ".join(f"{s} {len(splits[s])}" for s in SPLITS),
        len(skipped),
    )
    return manifests


def _ensure_dataset(data_folder, download):
    """Download and unpack the archive if ``data_folder`` is missing or empty; check its layout."""
    fetch_dataset(data_folder, URL, "Speech Commands", download)
    for name in LISTS.values():
        if not os.path.isfile(os.path.join(data_folder, name)):
            raise FileNotFoundError(
                f"{os.path.join(data_folder, name)} not found: {data_folder!r} is "
                "not an unpacked speech_commands_v0.02 folder"
            )


def _read_list(data_folder, name):
    """Relative paths in one of the official split lists."""
    with open(os.path.join(data_folder, name)) as f:
        return {line.strip() for line in f if line.strip()}


def _check_speakers(splits, strict):
    """Raise (or warn) if a speaker has files in two splits."""
    speakers = {s: {e["speaker"] for e in splits[s].values()} for s in SPLITS}
    shared = {
        f"{a}/{b}": sorted(speakers[a] & speakers[b])
        for i, a in enumerate(SPLITS)
        for b in SPLITS[i + 1 :]
        if speakers[a] & speakers[b]
    }
    if not shared:
        return
    message = "Speakers in more than one split: " + "; ".join(
        f"{pair}: {names[:10]} ({len(names)})" for pair, names in shared.items()
    )
    if strict:
        raise ValueError(message + " (pass check_speakers=False to proceed)")
    logger.warning(message)
