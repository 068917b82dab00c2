"""AudioSet's file formats: segment lists, the class index, clip file names, multi-label datasets.

What ``recipes/AudioSet/audioset_prepare.py``, the shard writer and the
EfficientAT logits import share (Gemmeke et al., "Audio Set: An ontology
and human-labeled dataset for audio events", ICASSP 2017):

* ``read_segments``: ``balanced_train_segments.csv``,
  ``unbalanced_train_segments.csv`` and ``eval_segments.csv``: three ``#``
  header lines, then ``YTID, start_seconds, end_seconds, "label,label"``.
* ``read_class_labels``: ``class_labels_indices.csv`` (``index,mid,
  display_name``, 527 classes): the class index of each label ``mid``.
* ``parse_clip_name``: the YouTube id (11 characters of ``[A-Za-z0-9_-]``)
  and start time in the file names downloaders use (``_NAME_SCHEMES``).
* ``multilabel_datasets``: SpeechBrain datasets whose ``label_encoded`` is
  a float multi-hot vector ``[classes]`` (what ``AudioClassifierBrain``
  takes as multi-label targets), reading any audio soundfile reads, mixed
  to mono and resampled to the model's rate (AudioSet clips come at many
  rates and often in stereo).

Authors
 * fastast developers 2026
"""

import csv
import os
import re
from typing import NamedTuple

import soundfile as sf
import speechbrain as sb
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.dataio import empty_split_error, read_manifest

__all__ = [
    "CLASS_LABELS_FILE",
    "SEGMENT_FILES",
    "ClipName",
    "Segment",
    "audio_extensions",
    "multi_hot",
    "multilabel_datasets",
    "parse_clip_name",
    "read_class_labels",
    "read_segments",
]

SEGMENT_FILES = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
CLASS_LABELS_FILE = "class_labels_indices.csv"
_YTID = r"(?P<ytid>[A-Za-z0-9_-]{11})"

# (name, pattern of the file name without extension, what the start group holds)
_NAME_SCHEMES = (
    (
        "Y<YTID>_<start>_<end>",
        re.compile(rf"^Y{_YTID}_(?P<start>\d+\.\d{{3}})_(?P<end>\d+\.\d{{3}})$"),
        "s",
    ),
    ("<YTID>_<start_ms>", re.compile(rf"^{_YTID}_(?P<start>\d+)$"), "ms"),
    ("<YTID>", re.compile(rf"^{_YTID}$"), None),
    ("Y<YTID>", re.compile(rf"^Y{_YTID}$"), None),
)


class Segment(NamedTuple):
    """One row of a segment list.

    Example
    -------
    >>> Segment("--PJHxphWEs", 30.0, 40.0, ("/m/09x0r",)).ytid
    '--PJHxphWEs'
    """

    ytid: str
    start: float
    end: float
    labels: tuple[str, ...]


class ClipName(NamedTuple):
    """What a clip's file name tells: the YouTube id, the start (seconds, None if absent), the scheme.

    Example
    -------
    >>> ClipName("--PJHxphWEs", 30.0, "<YTID>_<start_ms>").start
    30.0
    """

    ytid: str
    start: float | None
    scheme: str


def audio_extensions():
    """File extensions (lower case, with the dot) of the formats soundfile reads here.

    Returns
    -------
    set of str
        E.g. ``{".wav", ".flac", ".ogg", ".mp3", ...}``.

    Example
    -------
    >>> {".wav", ".flac"} <= audio_extensions()
    True
    """
    return {f".{name.lower()}" for name in sf.available_formats()} | {".oga", ".opus"}


def parse_clip_name(filename):
    """The YouTube id and start time in a clip's file name, or None for other names.

    The schemes (``_NAME_SCHEMES``, extension: any audio format):
    ``Y<YTID>_<start>_<end>`` with seconds to 3 decimals (the AudioSet
    downloaders' and AST's ``Y--PJHxphWEs_30.000_40.000.wav``),
    ``<YTID>_<start_ms>`` (start in integer milliseconds,
    ``--PJHxphWEs_30000.flac``), ``<YTID>`` and ``Y<YTID>`` (no start). A
    YouTube id is exactly 11 characters of ``[A-Za-z0-9_-]``, which makes the
    schemes unambiguous.

    Arguments
    ---------
    filename : str
        A file name or path.

    Returns
    -------
    ClipName or None
        None when no scheme matches.

    Example
    -------
    >>> parse_clip_name("audio/Y--PJHxphWEs_30.000_40.000.wav")
    ClipName(ytid='--PJHxphWEs', start=30.0, scheme='Y<YTID>_<start>_<end>')
    >>> parse_clip_name("--PJHxphWEs_30000.flac").start, parse_clip_name("YabcdefghijK.mp3").ytid
    (30.0, 'abcdefghijK')
    >>> parse_clip_name("notes.txt") is None
    True
    """
    stem = os.path.splitext(os.path.basename(filename))[0]
    for name, pattern, unit in _NAME_SCHEMES:
        match = pattern.match(stem)
        if match:
            start = None
            if unit == "s":
                start = float(match["start"])
            elif unit == "ms":
                start = int(match["start"]) / 1000.0
            return ClipName(match["ytid"], start, name)
    return None


def read_segments(path):
    """The segments of an AudioSet segment list (``*_segments.csv``).

    Arguments
    ---------
    path : str
        E.g. ``balanced_train_segments.csv``.

    Returns
    -------
    list of Segment
        In file order.

    Example
    -------
    >>> path = getfixture("tmp_path") / "eval_segments.csv"
    >>> _ = path.write_text(
    ...     "# Segments csv created Sun Mar  5 10:54:31 2017\\n"
    ...     "# num_ytids=1, num_segs=1, num_unique_labels=2, num_positive_labels=2\\n"
    ...     "# YTID, start_seconds, end_seconds, positive_labels\\n"
    ...     '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"\\n'
    ... )
    >>> read_segments(path)
    [Segment(ytid='--4gqARaEJE', start=0.0, end=10.0, labels=('/m/068hy', '/m/07q6cd_'))]
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AudioSet segment list not found: {path}")
    segments, seen = [], set()
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f, skipinitialspace=True)
        for line, row in enumerate(rows, start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(
                    f"{path}, line {line}: expected 'YTID, start_seconds, end_seconds, "
                    f'"label,label"\', got {len(row)} fields: {row}'
                )
            ytid, start, end, labels = row
            try:
                start, end = float(start), float(end)
            except ValueError as err:
                raise ValueError(f"{path}, line {line}: bad start/end times: {row}") from err
            labels = tuple(label.strip() for label in labels.split(",") if label.strip())
            if not labels:
                raise ValueError(f"{path}, line {line}: segment {ytid} has no labels")
            if ytid in seen:
                raise ValueError(f"{path}, line {line}: YTID {ytid} is listed twice")
            seen.add(ytid)
            segments.append(Segment(ytid.strip(), start, end, labels))
    return segments


def read_class_labels(path):
    """``mid -> (index, display_name)`` from ``class_labels_indices.csv``.

    Arguments
    ---------
    path : str or os.PathLike
        The file (header ``index,mid,display_name``; indices 0 to N-1, each
        once, rows in any order).

    Returns
    -------
    dict
        Label mid to ``(index, display_name)``, in index order.

    Example
    -------
    >>> path = getfixture("tmp_path") / "class_labels_indices.csv"
    >>> _ = path.write_text('index,mid,display_name\\n0,/m/09x0r,"Speech"\\n1,/m/05zppz,"Male speech, man speaking"\\n')
    >>> read_class_labels(path)["/m/05zppz"]
    (1, 'Male speech, man speaking')
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AudioSet class index not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))
    if not rows or set(rows[0]) != {"index", "mid", "display_name"}:
        raise ValueError(f"{path}: expected the columns index,mid,display_name")
    try:
        rows.sort(key=lambda row: int(row["index"]))
    except ValueError as err:
        raise ValueError(f"{path}: every index must be an integer ({err})") from err
    indices = [int(row["index"]) for row in rows]
    if indices != list(range(len(rows))):
        raise ValueError(
            f"{path}: indices must be 0 to {len(rows) - 1}, each once; got {indices[:10]}"
            + (" ..." if len(indices) > 10 else "")
        )
    classes = {}
    for i, row in enumerate(rows):
        if row["mid"] in classes:
            raise ValueError(f"{path}: label {row['mid']} is listed twice")
        classes[row["mid"]] = (i, row["display_name"])
    return classes


def multi_hot(labels, classes):
    """A float multi-hot vector ``[len(classes)]`` of label mids.

    Arguments
    ---------
    labels : list of str or str
        Label mids (a ``"/m/a,/m/b"`` string as in AST's datafiles is split).
    classes : dict
        ``read_class_labels`` output.

    Returns
    -------
    torch.Tensor
        Float32 with ones at the labels' indices.

    Example
    -------
    >>> multi_hot("/m/b,/m/a", {"/m/a": (0, "A"), "/m/b": (1, "B"), "/m/c": (2, "C")}).tolist()
    [1.0, 1.0, 0.0]
    """
    if isinstance(labels, str):
        labels = [label for label in labels.split(",") if label]
    target = torch.zeros(len(classes))
    for label in labels:
        if label not in classes:
            raise ValueError(f"label {label!r} is not in the class index ({len(classes)} classes)")
        target[classes[label][0]] = 1.0
    return target


def multilabel_datasets(manifests, class_labels_file, n_classes, sample_rate=16000):
    """SpeechBrain datasets with multi-hot ``label_encoded`` from AudioSet manifests.

    Arguments
    ---------
    manifests : dict
        Split name to a manifest (``fastast_plugin.data.dataio.read_manifest``
        format; entries have ``wav`` and ``labels``, a list of mids).
    class_labels_file : str
        ``class_labels_indices.csv``.
    n_classes : int
        Expected number of classes in it.
    sample_rate : int
        Rate the clips are resampled to.

    Returns
    -------
    dict
        Split name to ``DynamicItemDataset`` with output keys ``id``, ``sig``
        and ``label_encoded`` (float ``[n_classes]``).

    Example
    -------
    >>> import numpy as np
    >>> from fastast_plugin.data.dataio import write_manifest
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "c.csv").write_text("index,mid,display_name\\n0,/m/a,A\\n1,/m/b,B\\n")
    >>> sf.write(str(tmp / "x.wav"), np.zeros(800), 8000)
    >>> write_manifest({"x": {"wav": str(tmp / "x.wav"), "labels": ["/m/b"]}}, str(tmp / "m.json"))
    >>> item = multilabel_datasets({"train": str(tmp / "m.json")}, str(tmp / "c.csv"), 2)["train"][0]
    >>> item["id"], item["sig"].shape, item["label_encoded"].tolist()
    ('x', torch.Size([1600]), [0.0, 1.0])
    """
    classes = read_class_labels(class_labels_file)
    if len(classes) != n_classes:
        raise ValueError(
            f"{class_labels_file} has {len(classes)} classes, but n_classes is {n_classes}"
        )

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio(wav):
        return load_audio(wav, sample_rate)

    @sb.utils.data_pipeline.takes("labels")
    @sb.utils.data_pipeline.provides("label_encoded")
    def labels(mids):
        return multi_hot(mids, classes)

    datasets = {}
    for split, path in manifests.items():
        entries = read_manifest(path)
        if not entries:
            raise empty_split_error(split, path)
        for clip_id, entry in entries.items():
            unknown = [m for m in entry.get("labels", []) if m not in classes]
            if "labels" not in entry or unknown:
                raise ValueError(
                    f"{path}: clip {clip_id} has no 'labels' or labels missing from "
                    f"{class_labels_file}: {unknown}"
                )
        datasets[split] = sb.dataio.dataset.DynamicItemDataset(
            entries, dynamic_items=[audio, labels], output_keys=["id", "sig", "label_encoded"]
        )
    return datasets
