"""Procedural sound classes and generated datasets in real layouts, for demos and tests.

Four classes that a small spectrogram model can tell apart only by looking
at time-frequency structure: steady harmonic tones, rising chirps, band-
limited noise bursts and click trains, each with random pitch, timing,
level and background noise. ``write_speech_commands``, ``write_esc50``,
``write_voxceleb`` and ``write_audioset`` lay such clips out exactly as the
real Speech Commands V2, ESC-50, VoxCeleb1 and AudioSet files are laid out
(folders, split lists, segment CSVs, label indices, clip naming schemes), so
the recipes' preparation scripts run on them unchanged.

Authors
 * fastast developers 2026
"""

import csv
import hashlib
import math
import os

import numpy as np
import soundfile as sf

__all__ = [
    "CLASSES",
    "synthesize",
    "write_audioset",
    "write_esc50",
    "write_speech_commands",
    "write_voxceleb",
]

_SAMPLE_RATE = 16000
CLASSES = ("tone", "chirp", "noise_burst", "clicks")
_ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def _tone(t, rng, sr):
    f0 = rng.uniform(200, 800)
    return sum(np.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 4))


def _chirp(t, rng, sr):
    f_start, f_end = rng.uniform(200, 600), rng.uniform(2000, 5000)
    sweep = f_start + (f_end - f_start) * t / t[-1]
    return np.sin(2 * math.pi * np.cumsum(sweep) / sr)


def _noise_burst(t, rng, sr):
    noise = rng.standard_normal(len(t))
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(t), 1 / sr)
    centre = rng.uniform(1000, 5000)
    spectrum[np.abs(freqs - centre) > 600] = 0
    burst = np.fft.irfft(spectrum, len(t))
    start = rng.uniform(0.1, 0.4) * t[-1]
    envelope = (t > start) & (t < start + 0.4 * t[-1])
    return burst / (np.abs(burst).max() + 1e-9) * envelope


def _clicks(t, rng, sr):
    period = int(sr / rng.uniform(8, 30))
    signal = np.zeros(len(t))
    signal[rng.integers(period) :: period] = 1.0
    # each click is a 4 ms decaying broadband pulse, loud in its frame
    pulse_length = int(0.004 * sr)
    decay = np.exp(-np.arange(pulse_length) / (pulse_length / 4))
    pulse = rng.standard_normal(pulse_length) * decay
    return np.convolve(signal, pulse)[: len(t)]


_GENERATORS = dict(zip(CLASSES, (_tone, _chirp, _noise_burst, _clicks)))


def synthesize(label, duration=1.0, seed=0, sample_rate=_SAMPLE_RATE):
    """One clip of a procedural class.

    Arguments
    ---------
    label : str
        One of ``CLASSES``.
    duration : float
        Length in seconds.
    seed : int
        Random seed (the clip is a pure function of its arguments).
    sample_rate : int
        Sampling rate in Hz (at least 12 kHz, for the highest components).

    Returns
    -------
    numpy.ndarray
        ``float32`` waveform, peak below 1.

    Example
    -------
    >>> synthesize("chirp", duration=0.5).shape
    (8000,)
    """
    if label not in _GENERATORS:
        raise ValueError(f"label must be one of {CLASSES}, got {label!r}")
    if sample_rate < 12000:
        raise ValueError(f"sample_rate must be >= 12000 Hz, got {sample_rate}")
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    clip = _GENERATORS[label](t, rng, sample_rate)
    clip = clip / (np.abs(clip).max() + 1e-9) * rng.uniform(0.3, 0.9)
    clip = clip + 0.02 * rng.standard_normal(len(t))
    return (clip / max(1.0, np.abs(clip).max() / 0.99)).astype(np.float32)


def _sounds_for(names):
    """The procedural class each name sounds like (i-th name, i-th class)."""
    names = tuple(names)
    if not 1 <= len(names) <= len(CLASSES) or len(set(names)) != len(names):
        raise ValueError(
            f"need 1 to {len(CLASSES)} distinct class names (one per procedural "
            f"class {CLASSES}), got {names}"
        )
    return dict(zip(names, CLASSES))


def _hex_id(*parts):
    return hashlib.sha1("-".join(map(str, parts)).encode()).hexdigest()[:8]


def write_speech_commands(folder, words=CLASSES, speakers=20, clips_per_speaker=1, seed=0):
    """Write a dataset in the exact layout of ``speech_commands_v0.02``.

    Word folders of ``<speaker>_nohash_<n>.wav`` files (16 kHz mono, 0.7 to
    1 s), ``validation_list.txt`` and ``testing_list.txt`` with entries
    ``<word>/<file>``, a ``_background_noise_`` folder and a ``README.md``.
    Every speaker records every word; speakers ``i % 5 == 3`` are listed for
    validation, ``i % 5 == 4`` for test (so the lists keep speakers apart, as
    the official ones do), the others are in neither list (train).

    Arguments
    ---------
    folder : str
        The dataset folder to create.
    words : tuple of str
        Word (class) names; the i-th word sounds like ``CLASSES[i]``.
    speakers : int
        Number of speakers.
    clips_per_speaker : int
        Recordings of each word by each speaker.
    seed : int
        Base seed.

    Returns
    -------
    dict
        Split name (``train``, ``valid``, ``test``) to the sorted relative
        paths of its files.

    Example
    -------
    >>> splits = write_speech_commands(getfixture("tmpdir"), ("yes", "no"), speakers=5)
    >>> {split: len(files) for split, files in splits.items()}
    {'train': 6, 'valid': 2, 'test': 2}
    """
    sounds = _sounds_for(words)
    splits = {"train": [], "valid": [], "test": []}
    for i in range(speakers):
        speaker = _hex_id("speaker", seed, i)
        split = "valid" if i % 5 == 3 else "test" if i % 5 == 4 else "train"
        for w, word in enumerate(words):
            os.makedirs(os.path.join(folder, word), exist_ok=True)
            for n in range(clips_per_speaker):
                rel = f"{word}/{speaker}_nohash_{n}.wav"
                clip_seed = (seed * 1_000_003 + i * 1009 + w) * 31 + n
                rng = np.random.default_rng(clip_seed)
                clip = synthesize(sounds[word], rng.uniform(0.7, 1.0), clip_seed)
                sf.write(os.path.join(folder, rel), clip, _SAMPLE_RATE)
                splits[split].append(rel)
    for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        with open(os.path.join(folder, name), "w") as f:
            f.writelines(f"{rel}\n" for rel in sorted(splits[split]))
    noise_folder = os.path.join(folder, "_background_noise_")
    os.makedirs(noise_folder, exist_ok=True)
    noise = np.random.default_rng(seed).standard_normal(3 * _SAMPLE_RATE) * 0.1
    sf.write(os.path.join(noise_folder, "white_noise.wav"), noise, _SAMPLE_RATE)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("Generated Speech Commands-style dataset (fastast_plugin.data.synthetic)\n")
    return {split: sorted(files) for split, files in splits.items()}


def write_esc50(
    folder,
    categories=CLASSES,
    sources_per_fold=2,
    takes_per_source=2,
    duration=1.0,
    sample_rate=44100,
    seed=0,
):
    """Write a dataset in the exact layout of ``ESC-50-master``.

    ``meta/esc50.csv`` (columns ``filename, fold, target, category, esc10,
    src_file, take``) and ``audio/<fold>-<src_file>-<take>-<target>.wav``
    (mono, 44.1 kHz like the real clips, but ``duration`` long). Each source
    recording gives ``takes_per_source`` clips (takes A, B, ...), all in
    one fold, as in ESC-50.

    Arguments
    ---------
    folder : str
        The dataset folder to create.
    categories : tuple of str
        Category names; the i-th sounds like ``CLASSES[i]``, target ``i``.
    sources_per_fold : int
        Source recordings per category and fold.
    takes_per_source : int
        Clips cut from each source recording.
    duration : float
        Clip length in seconds.
    sample_rate : int
        Sampling rate of the files.
    seed : int
        Base seed.

    Returns
    -------
    list of dict
        The rows written to ``meta/esc50.csv``.

    Example
    -------
    >>> rows = write_esc50(getfixture("tmpdir"), ("dog", "rain"), duration=0.2)
    >>> len(rows), rows[0]["filename"], rows[0]["take"]
    (40, '1-...-A-0.wav', 'A')
    """
    sounds = _sounds_for(categories)
    os.makedirs(os.path.join(folder, "meta"), exist_ok=True)
    os.makedirs(os.path.join(folder, "audio"), exist_ok=True)
    rows = []
    for fold in range(1, 6):
        for target, category in enumerate(categories):
            for j in range(sources_per_fold):
                src_file = str(int(_hex_id("src", seed, fold, target, j), 16) % 900000 + 100000)
                for k in range(takes_per_source):
                    take = chr(ord("A") + k)
                    filename = f"{fold}-{src_file}-{take}-{target}.wav"
                    clip_seed = int(_hex_id("clip", seed, filename), 16) % (2**31)
                    clip = synthesize(sounds[category], duration, clip_seed, sample_rate)
                    sf.write(os.path.join(folder, "audio", filename), clip, sample_rate)
                    rows.append(
                        {
                            "filename": filename,
                            "fold": str(fold),
                            "target": str(target),
                            "category": category,
                            "esc10": "True" if target % 2 == 0 else "False",
                            "src_file": src_file,
                            "take": take,
                        }
                    )
    with open(os.path.join(folder, "meta", "esc50.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_ESC50_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


_VOX1_META_COLUMNS = ("VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set")
_VOX1_SPLITS = {"train": 1, "valid": 2, "test": 3}  # iden_split.txt's split numbers


def write_voxceleb(
    folder,
    speakers=4,
    videos_per_speaker=2,
    utterances_per_video=5,
    min_duration=1.5,
    max_duration=3.0,
    meta=True,
    seed=0,
):
    """Write a dataset in the exact layout of VoxCeleb1 (speaker identification).

    ``wav/<speaker>/<video>/<utterance>.wav`` (16 kHz mono, ``min_duration``
    to ``max_duration`` seconds), with speaker ids ``id10001``, ``id10002``,
    ..., 11-character YouTube-style video ids and utterances ``00001.wav``,
    ``00002.wav``, ... numbered per speaker as in VoxCeleb1; ``iden_split.txt``
    with one ``<split> <speaker>/<video>/<utterance>.wav`` line per
    utterance (1 = train, 2 = validation, 3 = test); and, with ``meta``,
    ``vox1_meta.csv`` (tab-separated ``VoxCeleb1 ID, VGGFace1 ID, Gender,
    Nationality, Set``). Speaker ``i`` sounds like ``CLASSES[i % 4]``; the
    ``n``-th utterance of a speaker is listed for validation when
    ``n % 5 == 3``, for test when ``n % 5 == 4``, else for training.

    Arguments
    ---------
    folder : str
        The dataset folder to create.
    speakers : int
        Number of speakers.
    videos_per_speaker : int
        Videos per speaker.
    utterances_per_video : int
        Utterances per video.
    min_duration, max_duration : float
        Range of the (uniformly drawn) utterance lengths in seconds.
    meta : bool
        Write ``vox1_meta.csv``.
    seed : int
        Base seed.

    Returns
    -------
    dict
        Split name (``train``, ``valid``, ``test``) to the sorted relative
        paths (``<speaker>/<video>/<utterance>.wav``) listed for it.

    Example
    -------
    >>> splits = write_voxceleb(getfixture("tmpdir"), speakers=2, utterances_per_video=5)
    >>> {split: len(files) for split, files in splits.items()}
    {'train': 12, 'valid': 4, 'test': 4}
    >>> sorted(os.path.basename(p) for p in splits["valid"] if p.startswith("id10001/"))
    ['00003.wav', '00008.wav']
    """
    if speakers < 1 or videos_per_speaker < 1 or utterances_per_video < 1:
        raise ValueError(
            "write_voxceleb needs at least one speaker, video and utterance, got "
            f"{speakers}, {videos_per_speaker}, {utterances_per_video}"
        )
    if not 0 < min_duration <= max_duration:
        raise ValueError(
            f"write_voxceleb needs 0 < min_duration <= max_duration, got "
            f"{min_duration}, {max_duration}"
        )
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    number_of = {number: split for split, number in _VOX1_SPLITS.items()}
    splits = {split: [] for split in _VOX1_SPLITS}
    lines, meta_rows = [], []
    for i in range(speakers):
        speaker = f"id{10001 + i}"
        sound = CLASSES[i % len(CLASSES)]
        n = 0
        for v in range(videos_per_speaker):
            digest = hashlib.sha1(f"video-{seed}-{i}-{v}".encode()).digest()
            video = "".join(alphabet[b % len(alphabet)] for b in digest[:11])
            os.makedirs(os.path.join(folder, "wav", speaker, video), exist_ok=True)
            for _ in range(utterances_per_video):
                n += 1
                rel = f"{speaker}/{video}/{n:05d}.wav"
                clip_seed = int(_hex_id("vox", seed, rel), 16) % (2**31)
                rng = np.random.default_rng(clip_seed)
                duration = rng.uniform(min_duration, max_duration)
                clip = synthesize(sound, duration, clip_seed)
                sf.write(os.path.join(folder, "wav", rel), clip, _SAMPLE_RATE)
                number = 2 if n % 5 == 3 else 3 if n % 5 == 4 else 1
                lines.append(f"{number} {rel}")
                splits[number_of[number]].append(rel)
        meta_rows.append((speaker, f"Generated_{sound}_{i + 1}", "mf"[i % 2], "Nowhere", "dev"))
    with open(os.path.join(folder, "iden_split.txt"), "w") as f:
        f.writelines(f"{line}\n" for line in lines)
    if meta:
        with open(os.path.join(folder, "vox1_meta.csv"), "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(_VOX1_META_COLUMNS)
            writer.writerows(meta_rows)
    return {split: sorted(files) for split, files in splits.items()}


_AUDIOSET_SPLITS = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
_AUDIOSET_SCHEMES = ("Y<YTID>_<start>_<end>.wav", "<YTID>.flac", "<YTID>_<start_ms>.wav")
_YTID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _ytid(*parts):
    digest = int(hashlib.sha1("-".join(map(str, parts)).encode()).hexdigest(), 16)
    return "".join(_YTID_ALPHABET[(digest >> (6 * i)) % 64] for i in range(11))


def _audioset_mid(i):
    """The label mid of generated class ``i`` (``/m/0fa<i>``), as in ``class_labels_indices.csv``.

    Example
    -------
    >>> _audioset_mid(2)
    '/m/0fa2'
    """
    return f"/m/0fa{i}"


def _audioset_clip_name(ytid, start, scheme):
    """A clip's file name under one of ``_AUDIOSET_SCHEMES``.

    Example
    -------
    >>> [_audioset_clip_name("--PJHxphWEs", 30.0, s) for s in _AUDIOSET_SCHEMES]
    ['Y--PJHxphWEs_30.000_40.000.wav', '--PJHxphWEs.flac', '--PJHxphWEs_30000.wav']
    """
    if scheme == _AUDIOSET_SCHEMES[0]:
        return f"Y{ytid}_{start:.3f}_{start + 10:.3f}.wav"
    if scheme == _AUDIOSET_SCHEMES[1]:
        return f"{ytid}.flac"
    if scheme == _AUDIOSET_SCHEMES[2]:
        return f"{ytid}_{round(start * 1000)}.wav"
    raise ValueError(f"scheme must be one of {_AUDIOSET_SCHEMES}, got {scheme!r}")


def write_audioset(
    folder,
    clips=None,
    classes=CLASSES,
    duration=1.0,
    missing=0,
    unreadable=0,
    seed=0,
):
    """Write a dataset in the layout of a downloaded AudioSet: segment lists, class index, clips.

    ``balanced_train_segments.csv``, ``unbalanced_train_segments.csv`` and
    ``eval_segments.csv`` (three ``#`` header lines, then ``YTID,
    start_seconds, end_seconds, "label,label"``), ``class_labels_indices.csv``
    (``index,mid,display_name``) and the clips in
    ``audio/<split>/``, named by the three ``_AUDIOSET_SCHEMES`` in turn (16
    kHz mono, ``duration`` long, not 10 s). Each clip has one or two labels
    and is the sum of those classes' procedural sounds. The last ``missing``
    segments of each split have no file; the ``unreadable`` ones before them
    have a file that is not audio.

    Arguments
    ---------
    folder : str
        The dataset folder to create.
    clips : dict, optional
        Segments per split (default ``{"balanced_train": 40,
        "unbalanced_train": 20, "eval": 20}``).
    classes : tuple of str
        Display names; class ``i`` sounds like ``CLASSES[i]``, mid
        ``_audioset_mid(i)``.
    duration : float
        Clip length in seconds.
    missing : int
        Segments per split without audio.
    unreadable : int
        Segments per split whose file is not audio.
    seed : int
        Base seed.

    Returns
    -------
    dict
        Split name to a list of dicts ``ytid``, ``start``, ``labels``
        (mids), ``path`` (relative, None when missing) and ``status``
        (``"ok"``, ``"missing"``, ``"unreadable"``).

    Example
    -------
    >>> splits = write_audioset(getfixture("tmpdir"), {"eval": 4}, duration=0.2, missing=1)
    >>> [(row["path"], row["status"]) for row in splits["eval"]][2:]
    [('audio/eval/..._20000.wav', 'ok'), (None, 'missing')]
    """
    sounds = _sounds_for(classes)
    clips = {"balanced_train": 40, "unbalanced_train": 20, "eval": 20} if clips is None else clips
    rng = np.random.default_rng(seed)
    with open(os.path.join(folder, "class_labels_indices.csv"), "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["index", "mid", "display_name"])
        for i, name in enumerate(classes):
            writer.writerow([i, _audioset_mid(i), name])
    result = {}
    for split, csv_name in _AUDIOSET_SPLITS.items():
        count = clips.get(split, 0)
        rows = []
        audio_dir = os.path.join(folder, "audio", split)
        os.makedirs(audio_dir, exist_ok=True)
        for n in range(count):
            ytid = _ytid("audioset", seed, split, n)
            start = float(n % 7) * 10.0 + (0.5 if n % 3 == 1 else 0.0)
            picked = rng.choice(len(classes), size=1 + int(rng.random() < 0.5), replace=False)
            labels = [_audioset_mid(int(i)) for i in sorted(picked)]
            status = "ok"
            if n >= count - missing:
                status = "missing"
            elif n >= count - missing - unreadable:
                status = "unreadable"
            path = None
            if status != "missing":
                path = f"audio/{split}/" + _audioset_clip_name(
                    ytid, start, _AUDIOSET_SCHEMES[n % len(_AUDIOSET_SCHEMES)]
                )
                full = os.path.join(folder, path)
                if status == "unreadable":
                    with open(full, "wb") as out:
                        out.write(b"not audio at all" * 8)
                else:
                    clip_seed = int(_hex_id("asclip", seed, split, n), 16) % (2**31)
                    mix = sum(
                        synthesize(sounds[classes[int(i)]], duration, clip_seed + int(i))
                        for i in picked
                    )
                    mix = mix / max(1.0, np.abs(mix).max() / 0.99)
                    sf.write(full, mix.astype(np.float32), _SAMPLE_RATE)
            rows.append(
                {"ytid": ytid, "start": start, "labels": labels, "path": path, "status": status}
            )
        with open(os.path.join(folder, csv_name), "w", newline="") as f:
            f.write("# Segments csv created Sun Mar  5 10:54:31 2017 (generated)\n")
            f.write(
                f"# num_ytids={count}, num_segs={count}, num_unique_labels={len(classes)}, "
                f"num_positive_labels={sum(len(r['labels']) for r in rows)}\n"
            )
            f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
            for row in rows:
                f.write(
                    f"{row['ytid']}, {row['start']:.3f}, {row['start'] + 10:.3f}, "
                    f'"{",".join(row["labels"])}"\n'
                )
        result[split] = rows
    return result
