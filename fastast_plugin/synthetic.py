"""Procedural sound classes and generated datasets in real layouts, for demos and tests.

Four classes that a small spectrogram model can tell apart only by looking
at time-frequency structure: steady harmonic tones, rising chirps, band-
limited noise bursts and click trains, each with random pitch, timing,
level and background noise. ``write_speech_commands`` and ``write_esc50``
lay such clips out exactly as the real Speech Commands V2 and ESC-50
archives are laid out, so the recipes' preparation scripts run on them
unchanged.

Authors
 * fastast developers 2026
"""

import csv
import hashlib
import math
import os

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
CLASSES = ("tone", "chirp", "noise_burst", "clicks")
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


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


def synthesize(label, duration=1.0, seed=0, sample_rate=SAMPLE_RATE):
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


def write_speech_commands(
    folder, words=CLASSES, speakers=20, clips_per_speaker=1, seed=0
):
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
                sf.write(os.path.join(folder, rel), clip, SAMPLE_RATE)
                splits[split].append(rel)
    for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        with open(os.path.join(folder, name), "w") as f:
            f.writelines(f"{rel}\n" for rel in sorted(splits[split]))
    noise_folder = os.path.join(folder, "_background_noise_")
    os.makedirs(noise_folder, exist_ok=True)
    noise = np.random.default_rng(seed).standard_normal(3 * SAMPLE_RATE) * 0.1
    sf.write(os.path.join(noise_folder, "white_noise.wav"), noise, SAMPLE_RATE)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("Generated Speech Commands-style dataset (fastast_plugin.synthetic)\n")
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
        writer = csv.DictWriter(f, fieldnames=ESC50_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
