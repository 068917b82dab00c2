"""Data helpers every recipe shares: audio checks, manifests, datasets.

Dataset preparation scripts (``recipes/<Dataset>/<dataset>_prepare.py``)
differ in how they walk a dataset's layout; they all check the audio files
with ``audio_problem``, handle bad files with ``handle_bad_files`` and write
JSON manifests with ``write_manifest``; ``read_manifest`` is the one reader.
Training scripts turn manifests into SpeechBrain datasets with
``classification_datasets`` (batched by SpeechBrain's ``PaddedBatch``, with
relative lengths), reading whole files or, per split, one crop of each
file (``fastast_plugin.data.crops``: a random crop in training, a fixed one in
evaluation, for datasets of long utterances such as VoxCeleb).
``fold_path`` resolves per-fold file patterns of cross-validation recipes
(``fastast_plugin.training.crossval``).

Manifest format: a JSON object keyed by clip id; every entry has ``wav``
(path), ``label`` (class name) and ``duration`` (seconds), plus whatever the
dataset adds (``speaker``, ``fold``, ``src_file``).

Authors
 * fastast developers 2026
"""

import csv
import json
import os
import shutil
from collections import Counter

import soundfile as sf
import speechbrain as sb
from speechbrain.dataio.dataio import load_data_json
from speechbrain.utils.data_utils import download_file
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.crops import CROP_MODES, crop_length, cropped_audio_pipeline

__all__ = [
    "audio_problem",
    "classification_datasets",
    "clip_duration",
    "empty_split_error",
    "fetch_dataset",
    "fold_path",
    "handle_bad_files",
    "prepared_with",
    "read_manifest",
    "training_labels",
    "write_manifest",
]

logger = get_logger(__name__)

_BAD_FILE_POLICIES = ("skip", "raise")


def audio_problem(path, sample_rate=None):
    """What is wrong with an audio file, from its header, or None if nothing.

    Arguments
    ---------
    path : str
        The file.
    sample_rate : int, optional
        The strict format: the file must be mono at this rate (the
        recipes' ``strict_audio: True``). None (their default) accepts any
        rate and channel count: the data pipeline mixes the channels down and
        resamples (``fastast_plugin.data.audio.load_audio``).

    Returns
    -------
    str or None
        ``"missing"``, ``"unreadable (...)"``, ``"empty"``, ``"2 channels,
        expected mono"``, ``"8000 Hz, expected 16000 Hz"``, or None.

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmpdir") / "a.wav")
    >>> sf.write(path, np.zeros((800, 2)), 8000)
    >>> audio_problem(path, 8000), audio_problem(path), audio_problem(path + "x")
    ('2 channels, expected mono', None, 'missing')
    """
    if not os.path.isfile(path):
        return "missing"
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several types
        return f"unreadable ({str(err).strip().splitlines()[0][:120]})"
    if info.frames <= 0:
        return "empty"
    if sample_rate is None:
        return None
    if info.channels != 1:
        return f"{info.channels} channels, expected mono"
    if info.samplerate != sample_rate:
        return f"{info.samplerate} Hz, expected {sample_rate} Hz"
    return None


def handle_bad_files(bad_files, report_path, on_bad_file="skip"):
    """Report bad audio files by name, then skip them or raise.

    The report (``path,reason`` CSV) is always written, empty when every
    file is fine, so a prepared folder documents what it left out.

    Arguments
    ---------
    bad_files : dict
        Path to the reason it is bad (see ``audio_problem``).
    report_path : str
        Where the CSV report goes.
    on_bad_file : str
        ``"skip"``: log a warning naming them and leave them out of the
        manifests; ``"raise"``: raise ``ValueError`` naming them.

    Returns
    -------
    set
        The paths to leave out.

    Example
    -------
    >>> report = str(getfixture("tmpdir") / "skipped.csv")
    >>> handle_bad_files({"a.wav": "empty"}, report)
    {'a.wav'}
    >>> open(report).read().splitlines()
    ['path,reason', 'a.wav,empty']
    """
    if on_bad_file not in _BAD_FILE_POLICIES:
        raise ValueError(f"on_bad_file must be one of {_BAD_FILE_POLICIES}, got {on_bad_file!r}")
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    with open(report_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        for path in sorted(bad_files):
            writer.writerow([path, bad_files[path]])
    if not bad_files:
        return set()
    listing = "; ".join(f"{p}: {r}" for p, r in sorted(bad_files.items())[:20])
    more = len(bad_files) - 20
    listing += f"; ... and {more} more" if more > 0 else ""
    if on_bad_file == "raise":
        raise ValueError(
            f"{len(bad_files)} bad audio file(s) (listed in {report_path}): "
            f"{listing}. Fix or remove them, or set on_bad_file: skip"
        )
    logger.warning(
        "Skipping %d bad audio file(s) (listed in %s): %s",
        len(bad_files),
        report_path,
        listing,
    )
    return set(bad_files)


def fetch_dataset(data_folder, url, name, download=False, archive_folder=None):
    """Download and unpack a dataset archive into ``data_folder`` if that folder is missing or empty.

    Arguments
    ---------
    data_folder : str
        Where the dataset lives (left alone when it holds anything).
    url : str
        The archive (``.zip`` / ``.tar.gz``, SpeechBrain's ``download_file``).
    name : str
        The dataset's name, for messages.
    download : bool
        Without it a missing dataset raises ``FileNotFoundError``.
    archive_folder : str, optional
        The folder inside the archive that becomes ``data_folder`` (e.g.
        ``ESC-50-master``); None: the archive's contents.

    Example
    -------
    >>> fetch_dataset(str(getfixture("tmp_path") / "none"), "http://x/a.zip", "X")
    Traceback (most recent call last):
    ...
    FileNotFoundError: X not found in '...none'; unpack http://x/a.zip there or set download: True
    """
    if os.path.isdir(data_folder) and os.listdir(data_folder):
        return
    if not download:
        raise FileNotFoundError(
            f"{name} not found in {data_folder!r}; unpack {url} there or set download: True"
        )
    unpack = f"{os.path.abspath(data_folder)}.download"
    archive = os.path.join(unpack, os.path.basename(url))
    os.makedirs(unpack, exist_ok=True)
    logger.info("Downloading %s to %s", url, archive)
    download_file(url, archive, unpack=True, dest_unpack=unpack)
    os.remove(archive)
    if os.path.isdir(data_folder):
        os.rmdir(data_folder)  # empty: replaced by the unpacked folder
    shutil.move(os.path.join(unpack, archive_folder) if archive_folder else unpack, data_folder)
    if os.path.isdir(unpack):
        shutil.rmtree(unpack)


def write_manifest(entries, path):
    """Write a JSON manifest (clip id to fields) atomically.

    Arguments
    ---------
    entries : dict
        Clip id to a dict with at least ``wav`` and ``label``.
    path : str
        Output file.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "train.json")
    >>> write_manifest({"x": {"wav": "x.wav", "label": "yes"}}, path)
    >>> json.load(open(path))["x"]["label"]
    'yes'
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f, indent=1)
    os.replace(tmp, path)


def read_manifest(path, replacements=None):
    """Read a JSON manifest (clip id to fields): the one manifest reader of the package.

    Arguments
    ---------
    path : str
        The manifest, as ``write_manifest`` writes it.
    replacements : dict, optional
        Placeholders such as ``{data_root}`` in string values, filled by
        SpeechBrain's ``load_data_json``; None reads the values as they are.

    Returns
    -------
    dict
        Clip id to fields, in file order.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "m.json")
    >>> write_manifest({"x": {"wav": "{data_root}/x.wav", "label": "yes"}}, path)
    >>> read_manifest(path, {"data_root": "/data"})["x"]["wav"]
    '/data/x.wav'
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Manifest not found: {path}; run the dataset preparation (skip_prep: False) first"
        )
    try:
        if replacements is None:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        else:
            data = load_data_json(path, replacements)
    except json.JSONDecodeError as err:
        raise ValueError(f"manifest {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(
            f"manifest {path} must be a JSON object {{clip id: {{'wav': ..., "
            f"'label': ...}}}}, got {type(data).__name__}"
        )
    return data


def prepared_with(options_path, options, manifests):
    """Whether a preparation with the same ``options`` left all ``manifests``.

    Preparation scripts write their options as JSON next to their manifests
    when they finish; a re-run with the same options then skips the work.

    Arguments
    ---------
    options_path : str
        JSON file the last preparation wrote.
    options : dict
        Options of this run.
    manifests : iterable of str
        Files the preparation produces.

    Returns
    -------
    bool
        True when nothing needs to be prepared again.

    Example
    -------
    >>> folder = getfixture("tmpdir")
    >>> path = str(folder / "options.json")
    >>> prepared_with(path, {"fold": 1}, [])
    False
    >>> _ = open(path, "w").write('{"fold": 1}')
    >>> prepared_with(path, {"fold": 1}, []), prepared_with(path, {"fold": 2}, [])
    (True, False)
    """
    if not os.path.isfile(options_path) or not all(map(os.path.isfile, manifests)):
        return False
    with open(options_path) as f:
        return json.load(f) == options


def clip_duration(path):
    """Duration of an audio file in seconds, from its header.

    Arguments
    ---------
    path : str
        The file.

    Returns
    -------
    float
        Seconds.

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmpdir") / "b.wav")
    >>> sf.write(path, np.zeros(8000), 16000)
    >>> clip_duration(path)
    0.5
    """
    info = sf.info(path)
    return info.frames / info.samplerate


_FOLD_PLACEHOLDER = "{fold}"


def fold_path(path, fold=None, required=False, name="path"):
    """A per-fold path: ``{fold}`` in ``path`` replaced by the fold number.

    Cross-validation recipes (ESC-50) take paths of fold-specific files
    (a teacher trained without the test fold, a fixed-patch checkpoint
    fine-tuned on the other folds) as one pattern such as
    ``results/ast/fold_{fold}/model.pt``.

    Arguments
    ---------
    path : str or None
        The pattern; empty or None is returned as ``""`` (nothing set).
    fold : int, optional
        The fold; None leaves ``path`` unchanged.
    required : bool
        With a fold, the pattern must contain ``{fold}`` (a file that
        depends on the training folds, e.g. a teacher, must differ per
        fold); otherwise a path without it is used for every fold.
    name : str
        Name of the setting, for the error message.

    Returns
    -------
    str
        The path for ``fold`` (``""`` if ``path`` is empty).

    Example
    -------
    >>> fold_path("runs/fold_{fold}/model.pt", 3)
    'runs/fold_3/model.pt'
    >>> fold_path("audioset.pth", 3), fold_path("", 3, required=True)
    ('audioset.pth', '')
    """
    if not path:
        return ""
    path = os.fspath(path)
    if fold is None:
        return path
    if _FOLD_PLACEHOLDER not in path:
        if required:
            raise ValueError(
                f"{name} {path!r} has no {_FOLD_PLACEHOLDER} placeholder, so every "
                f"fold (here fold {fold}) would use the same file; it must come from "
                "a model that never saw that fold's test clips: give one file per "
                f"fold, e.g. .../fold_{_FOLD_PLACEHOLDER}/model.pt"
            )
        return path
    return path.replace(_FOLD_PLACEHOLDER, str(fold))


def _audio_pipeline(sample_rate):
    """A SpeechBrain pipeline ``wav -> sig``: any audio file as mono at ``sample_rate``.

    Arguments
    ---------
    sample_rate : int
        Rate of ``sig``: files at another rate are resampled and several
        channels averaged (``fastast_plugin.data.audio.load_audio``).

    Returns
    -------
    DynamicItem
        Takes ``wav``, provides ``sig`` (a ``[samples]`` float tensor).

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmpdir") / "c.wav")
    >>> sf.write(path, np.zeros((800, 2)), 8000)
    >>> _audio_pipeline(16000)(path).shape
    torch.Size([1600])
    """

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def read(wav):
        return load_audio(wav, sample_rate)

    return read


def empty_split_error(split, manifest_path):
    """The error for a split that preparation left empty, with the skipped files' reasons counted.

    Preparation writes ``skipped.csv`` (``handle_bad_files``) beside its
    manifests; its reasons say why the split is empty.

    Arguments
    ---------
    split : str
        The split's name.
    manifest_path : str
        Its (empty) manifest.

    Returns
    -------
    ValueError
        To raise.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> _ = handle_bad_files({"a.wav": "empty", "b.wav": "empty"}, str(tmp / "skipped.csv"))
    >>> print(empty_split_error("train", str(tmp / "train.json")))  # doctest: +ELLIPSIS
    the train split is empty: preparation left no clips in .../train.json; 2 file(s) skipped (listed in .../skipped.csv): 2 empty
    """
    report = os.path.join(os.path.dirname(os.path.abspath(manifest_path)), "skipped.csv")
    message = f"the {split} split is empty: preparation left no clips in {manifest_path}"
    if not os.path.isfile(report):
        return ValueError(f"{message}; check the data folder")
    with open(report, newline="") as f:
        # "unreadable (<libsndfile's message>)" counts as one reason.
        reasons = Counter(row["reason"].split(" (")[0] for row in csv.DictReader(f))
    if not reasons:
        return ValueError(f"{message}; no file was skipped: check the data folder and split lists")
    counted = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return ValueError(
        f"{message}; {sum(reasons.values())} file(s) skipped (listed in {report}): {counted}"
    )


def training_labels(manifest_path):
    """The sorted labels of a training manifest; an empty one raises ``empty_split_error``.

    Arguments
    ---------
    manifest_path : str
        A manifest whose entries have ``label``.

    Returns
    -------
    list of str

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "t.json")
    >>> write_manifest({"x": {"label": "no"}, "y": {"label": "yes"}}, path)
    >>> training_labels(path)
    ['no', 'yes']
    """
    entries = read_manifest(manifest_path)
    if not entries:
        raise empty_split_error("train", manifest_path)
    return sorted({entry["label"] for entry in entries.values()})


def classification_datasets(
    manifests, label_encoder_file, n_classes, sample_rate=16000, crop_frames=None, crops=None
):
    """SpeechBrain datasets for single-label classification from JSON manifests.

    The class index of each label is its rank in the sorted list of the
    training labels, stored in ``label_encoder_file`` (built once, on the
    main process, and loaded by every rank). Each split reads whole files,
    or with ``crops`` one crop per file and epoch (``cropped_audio_pipeline``).

    Arguments
    ---------
    manifests : dict
        Split name (``train`` first) to manifest path.
    label_encoder_file : str
        Where the label encoder is saved / loaded.
    n_classes : int, optional
        Expected number of classes (the training labels); anything else
        raises ``ValueError``. None: as many as there are.
    sample_rate : int
        Rate the audio is read at (any file is resampled and mixed to mono).
    crop_frames : int, optional
        Crop length in feature frames (``crop_length``); needed with
        ``crops``.
    crops : dict, optional
        Split name to crop mode (``"random"``, ``"start"``, ``"centre"``,
        see ``crops.cropped_audio_pipeline``); a split not listed reads whole files.

    Returns
    -------
    datasets : dict
        Split name to ``DynamicItemDataset`` with output keys ``id``,
        ``sig`` and ``label_encoded``.
    encoder : CategoricalEncoder
        The label encoder.

    Example
    -------
    >>> import numpy as np
    >>> tmp = getfixture("tmpdir")
    >>> sf.write(str(tmp / "y.wav"), np.zeros(1600), 16000)
    >>> sf.write(str(tmp / "n.wav"), np.zeros(1600), 16000)
    >>> entries = {
    ...     "y": {"wav": str(tmp / "y.wav"), "label": "yes"},
    ...     "n": {"wav": str(tmp / "n.wav"), "label": "no"},
    ... }
    >>> write_manifest(entries, str(tmp / "train.json"))
    >>> data, encoder = classification_datasets(
    ...     {"train": str(tmp / "train.json")}, str(tmp / "labels.txt"), 2
    ... )
    >>> item = data["train"][0]
    >>> item["id"], item["sig"].shape, int(item["label_encoded"])
    ('y', torch.Size([1600]), 1)
    >>> data, _ = classification_datasets(
    ...     {"train": str(tmp / "train.json")}, str(tmp / "labels.txt"), 2,
    ...     crop_frames=4, crops={"train": "random"},
    ... )
    >>> data["train"][0]["sig"].shape  # 3 frames of 10 ms + one of 25 ms
    torch.Size([880])
    """
    if "train" not in manifests:
        raise ValueError(
            f"classification_datasets needs a 'train' manifest, got {sorted(manifests)}"
        )
    crops = dict(crops or {})
    unknown = sorted(set(crops) - set(manifests))
    if unknown:
        raise ValueError(
            f"classification_datasets: crops name splits {unknown} that have no "
            f"manifest (splits: {sorted(manifests)})"
        )
    if crops and crop_frames is None:
        raise ValueError("classification_datasets: crops need crop_frames (the crop length)")
    for split, mode in crops.items():
        if mode not in CROP_MODES:
            raise ValueError(
                f"classification_datasets: crop mode of {split!r} must be one of "
                f"{CROP_MODES}, got {mode!r}"
            )
    contents = {split: read_manifest(path) for split, path in manifests.items()}
    for split, entries in contents.items():
        if not entries:
            raise empty_split_error(split, manifests[split])
    labels = training_labels(manifests["train"])
    n_classes = len(labels) if n_classes is None else n_classes
    if len(labels) != n_classes:
        raise ValueError(
            f"{manifests['train']} has {len(labels)} classes ({labels[:10]}...), "
            f"but n_classes is {n_classes}"
        )
    for split, entries in contents.items():
        unknown = sorted({e["label"] for e in entries.values()} - set(labels))
        if unknown:
            raise ValueError(
                f"{manifests[split]} has labels absent from the training set: {unknown}"
            )
    encoder = sb.dataio.encoder.CategoricalEncoder()
    encoder.load_or_create(label_encoder_file, from_iterables=[labels])
    encoder.expect_len(n_classes)

    @sb.utils.data_pipeline.takes("label")
    @sb.utils.data_pipeline.provides("label_encoded")
    def label_pipeline(label):
        return encoder.encode_label_torch(label)

    def reader(split):
        if split not in crops:
            return _audio_pipeline(sample_rate)
        length = crop_length(crop_frames, sample_rate)
        return cropped_audio_pipeline(sample_rate, length, crops[split])

    datasets = {
        split: sb.dataio.dataset.DynamicItemDataset(
            entries,
            dynamic_items=[reader(split), label_pipeline],
            output_keys=["id", "sig", "label_encoded"],
        )
        for split, entries in contents.items()
    }
    return datasets, encoder
