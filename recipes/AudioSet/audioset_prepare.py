"""Prepare AudioSet (balanced or full) from the segment lists and a folder of downloaded clips.

AudioSet is released as lists of YouTube segments, not audio; every user
downloads the clips themselves and names them by one of a few schemes. The
expected layout::

    data_folder/
        balanced_train_segments.csv     # 3 '#' lines, then YTID, start_seconds, end_seconds, "label,label"
        unbalanced_train_segments.csv   # (subset: full only)
        eval_segments.csv
        class_labels_indices.csv        # index,mid,display_name (527 classes)
        audio/...                       # the clips, in any sub-folders (audio_folder)

Clips are found by name, anywhere under ``audio_folder``, in any format
soundfile reads (WAV, FLAC, OGG, MP3, ...), under these schemes
(``fastast_plugin.data.audioset.parse_clip_name``; a YouTube id is 11 characters
of ``[A-Za-z0-9_-]``):

* ``Y<YTID>_<start>_<end>.<ext>``, seconds with 3 decimals
  (``Y--PJHxphWEs_30.000_40.000.wav``),
* ``<YTID>_<start_ms>.<ext>``, start in milliseconds (``--PJHxphWEs_30000.flac``),
* ``<YTID>.<ext>`` and ``Y<YTID>.<ext>`` (no start: any segment of that id).

A file that gives a start time matches a segment only at that start. A
segment without a file, and a file that soundfile cannot read (or that is
empty), is never dropped silently: all are counted in ``report.json`` and
listed, segments in ``missing.csv`` (``split,ytid,start_seconds,
end_seconds,reason``), files in ``skipped.csv`` (``path,reason``); with
``on_bad_file="raise"`` unreadable files stop the preparation. Clips may be
at any rate and in stereo: training mixes them to mono and resamples them
(``fastast_plugin.data.audio.load_audio``).

AST's own datafiles (``{"data": [{"wav": ..., "labels": "/m/..,/m/.."}]}``,
https://github.com/YuanGongND/ast, ``egs/audioset``) can be given instead
of the segment lists (``ast_datafiles={"train": ..., "eval": ...}``);
relative ``wav`` paths are taken relative to the JSON file's folder.

Outputs in ``save_folder``: ``train.json`` (balanced, or balanced +
unbalanced for ``subset="full"``) and ``eval.json`` (AST validates and tests
on the evaluation set), keyed by YouTube id with ``wav``, ``labels`` (mids),
``duration``, ``start`` and ``source``; a copy of
``class_labels_indices.csv``; ``report.json``, ``missing.csv``,
``skipped.csv``; and ``audioset_prepare.json`` (the options; a second call
with the same options does nothing).

Authors
 * fastast developers 2026
"""

import collections
import csv
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import soundfile as sf
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audioset import (
    CLASS_LABELS_FILE,
    SEGMENT_FILES,
    audio_extensions,
    parse_clip_name,
    read_class_labels,
    read_segments,
)
from fastast_plugin.data.dataio import handle_bad_files, prepared_with, write_manifest

logger = get_logger(__name__)

SUBSETS = {"balanced": ("balanced_train",), "full": ("balanced_train", "unbalanced_train")}
OPTIONS_FILE = "audioset_prepare.json"
START_TOLERANCE = 5e-4  # seconds


def prepare_audioset(
    data_folder,
    save_folder,
    subset="balanced",
    audio_folder=None,
    ast_datafiles=None,
    class_labels_file=None,
    skip_prep=False,
    on_bad_file="skip",
    num_workers=8,
):
    """Write ``train.json`` and ``eval.json`` from AudioSet's lists (or AST's datafiles) and the clips.

    Arguments
    ---------
    data_folder : str
        Folder with the segment lists and ``class_labels_indices.csv``.
    save_folder : str
        Where manifests and reports go.
    subset : str
        ``"balanced"`` (20k training clips) or ``"full"`` (+ unbalanced, 2M).
    audio_folder : str, optional
        Where the clips are (searched recursively); default
        ``<data_folder>/audio``.
    ast_datafiles : dict, optional
        ``{"train": path, "eval": path}`` of AST JSON datafiles, used instead
        of the segment lists (``subset`` and ``audio_folder`` are then not
        used).
    class_labels_file : str, optional
        Default ``<data_folder>/class_labels_indices.csv``.
    skip_prep : bool
        Do nothing but return the manifest paths.
    on_bad_file : str
        Unreadable files: ``"skip"`` (listed, left out) or ``"raise"``.
    num_workers : int
        Threads reading the audio headers.

    Returns
    -------
    dict
        ``train``, ``eval`` (manifest paths), ``class_labels`` and ``report``.

    Example
    -------
    >>> from fastast_plugin.data.synthetic import write_audioset
    >>> data = getfixture("tmp_path") / "audioset"
    >>> data.mkdir()
    >>> _ = write_audioset(str(data), {"balanced_train": 6, "eval": 3}, duration=0.2, missing=1)
    >>> out = prepare_audioset(str(data), str(data / "prepared"))
    >>> report = json.load(open(out["report"]))
    >>> report["train"]["segments"], report["train"]["found"], report["train"]["missing"]
    (6, 5, 1)
    """
    save_folder = os.fspath(save_folder)
    outputs = {
        "train": os.path.join(save_folder, "train.json"),
        "eval": os.path.join(save_folder, "eval.json"),
        "class_labels": os.path.join(save_folder, CLASS_LABELS_FILE),
        "report": os.path.join(save_folder, "report.json"),
    }
    if skip_prep:
        return outputs
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {sorted(SUBSETS)}, got {subset!r}")
    class_labels_file = class_labels_file or os.path.join(data_folder, CLASS_LABELS_FILE)
    audio_folder = audio_folder or os.path.join(data_folder, "audio")
    options = {
        "data_folder": os.path.abspath(data_folder),
        "subset": subset,
        "audio_folder": os.path.abspath(audio_folder),
        "ast_datafiles": ast_datafiles,
        "class_labels_file": os.path.abspath(class_labels_file),
        "on_bad_file": on_bad_file,
    }
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if prepared_with(options_path, options, outputs.values()):
        logger.info("AudioSet already prepared in %s", save_folder)
        return outputs
    classes = read_class_labels(class_labels_file)
    if ast_datafiles:
        wanted = {split: _read_ast_datafile(ast_datafiles[split]) for split in ("train", "eval")}
    else:
        files = find_clips(audio_folder)
        wanted = {
            "train": _match(data_folder, SUBSETS[subset], files),
            "eval": _match(data_folder, ("eval",), files),
        }
    _check_labels(wanted, classes, class_labels_file)
    candidates = {
        split: {clip_id: c for clip_id, c in clips.items() if c["wav"] is not None}
        for split, clips in wanted.items()
    }
    paths = sorted({c["wav"] for clips in candidates.values() for c in clips.values()})
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        headers = dict(zip(paths, pool.map(_header, paths)))
    bad = {path: problem for path, (problem, _) in headers.items() if problem}
    skipped = handle_bad_files(bad, os.path.join(save_folder, "skipped.csv"), on_bad_file)
    report, missing_rows = {}, []
    for split, clips in wanted.items():
        entries = {}
        for clip_id, clip in clips.items():
            if clip["wav"] is None:
                missing_rows.append([split, *clip["row"], clip["reason"]])
                continue
            if clip["wav"] in skipped:
                continue
            entries[clip_id] = {
                "wav": clip["wav"],
                "labels": list(clip["labels"]),
                "duration": headers[clip["wav"]][1],
                "start": clip.get("start"),
                "source": clip["source"],
            }
        write_manifest(entries, outputs[split])
        unreadable = sum(c["wav"] in skipped for c in clips.values() if c["wav"] is not None)
        report[split] = {
            "segments": len(clips),
            "found": sum(c["wav"] is not None for c in clips.values()),
            "missing": sum(c["wav"] is None for c in clips.values()),
            "unreadable": unreadable,
            "clips": len(entries),
            "schemes": dict(
                collections.Counter(c.get("scheme") for c in candidates[split].values())
            ),
            "sources": sorted({c["source"] for c in clips.values()}),
        }
    os.makedirs(save_folder, exist_ok=True)
    with open(os.path.join(save_folder, "missing.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "ytid", "start_seconds", "end_seconds", "reason"])
        writer.writerows(missing_rows)
    report["missing_list"] = os.path.join(save_folder, "missing.csv")
    report["skipped_list"] = os.path.join(save_folder, "skipped.csv")
    with open(outputs["report"], "w") as f:
        json.dump(report, f, indent=1)
    shutil.copyfile(class_labels_file, outputs["class_labels"])
    for split in ("train", "eval"):
        r = report[split]
        logger.info(
            "AudioSet %s: %d segments, %d clips (%d without audio, %d unreadable; see %s)",
            split,
            r["segments"],
            r["clips"],
            r["missing"],
            r["unreadable"],
            outputs["report"],
        )
    with open(options_path, "w") as f:
        json.dump(options, f)
    return outputs


def find_clips(audio_folder):
    """Every audio file under ``audio_folder`` whose name follows a scheme, by YouTube id.

    Arguments
    ---------
    audio_folder : str
        Searched recursively (symbolic links followed).

    Returns
    -------
    dict
        YouTube id to a sorted list of ``(path, start or None, scheme)``.
    """
    if not os.path.isdir(audio_folder):
        raise FileNotFoundError(
            f"AudioSet audio folder not found: {audio_folder}; download the clips there "
            "(or set audio_folder)"
        )
    extensions = audio_extensions()
    files = collections.defaultdict(list)
    ignored = 0
    for root, _, names in os.walk(audio_folder, followlinks=True):
        for name in names:
            if os.path.splitext(name)[1].lower() not in extensions:
                continue
            clip = parse_clip_name(name)
            if clip is None:
                ignored += 1
                continue
            files[clip.ytid].append((os.path.join(root, name), clip.start, clip.scheme))
    if ignored:
        logger.warning(
            "%d audio files under %s follow no naming scheme; ignored", ignored, audio_folder
        )
    return {ytid: sorted(found, key=lambda f: f[0]) for ytid, found in files.items()}


def _match(data_folder, splits, files):
    """Segments of ``splits`` with their files (``wav`` None and a ``reason`` when missing)."""
    clips = {}
    for split in splits:
        path = os.path.join(data_folder, SEGMENT_FILES[split])
        for seg in read_segments(path):
            if seg.ytid in clips:
                raise ValueError(f"{path}: YTID {seg.ytid} is also in another segment list")
            found = files.get(seg.ytid, [])
            match = [f for f in found if f[1] is None or abs(f[1] - seg.start) < START_TOLERANCE]
            clip = {
                "labels": seg.labels,
                "start": seg.start,
                "source": SEGMENT_FILES[split],
                "row": [seg.ytid, f"{seg.start:.3f}", f"{seg.end:.3f}"],
                "wav": match[0][0] if match else None,
                "scheme": match[0][2] if match else None,
            }
            if not match:
                clip["reason"] = (
                    "no file"
                    if not found
                    else "files of this YTID start elsewhere: " + ", ".join(f[0] for f in found[:3])
                )
            clips[seg.ytid] = clip
    return clips


def _read_ast_datafile(path):
    """Clips of an AST datafile, keyed by YouTube id (the file's stem if its name has none)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"AST datafile {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f'AST datafile {path} must be {{"data": [{{"wav": ..., "labels": ...}}]}}')
    base = os.path.dirname(os.path.abspath(path))
    clips = {}
    for i, item in enumerate(data["data"]):
        if not isinstance(item, dict) or "wav" not in item or "labels" not in item:
            raise ValueError(f"AST datafile {path}: item {i} needs 'wav' and 'labels', got {item}")
        wav = item["wav"] if os.path.isabs(item["wav"]) else os.path.join(base, item["wav"])
        name = parse_clip_name(wav)
        clip_id = name.ytid if name else os.path.splitext(os.path.basename(wav))[0]
        if clip_id in clips:
            raise ValueError(f"AST datafile {path}: clip {clip_id} is listed twice")
        labels = tuple(label for label in item["labels"].split(",") if label)
        start = name.start if name else None
        exists = os.path.isfile(wav)
        clips[clip_id] = {
            "labels": labels,
            "start": start,
            "source": os.path.basename(path),
            "row": [clip_id, "" if start is None else f"{start:.3f}", ""],
            "wav": wav if exists else None,
            "scheme": name.scheme if name else "AST datafile",
            "reason": None if exists else f"no file {wav}",
        }
    return clips


def _check_labels(wanted, classes, class_labels_file):
    unknown = collections.Counter(
        label
        for clips in wanted.values()
        for c in clips.values()
        for label in c["labels"]
        if label not in classes
    )
    if unknown:
        raise ValueError(
            f"labels missing from {class_labels_file}: {dict(unknown.most_common(10))}"
        )


def _header(path):
    """``(problem or None, duration in seconds)`` from a file's header."""
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several types
        return f"unreadable ({str(err).strip().splitlines()[0][:120]})", None
    if info.frames <= 0:
        return "empty", None
    return None, info.frames / info.samplerate
