#!/usr/bin/env python3
"""Lay out the Free Spoken Digit Dataset (FSDD) as Speech Commands or ESC-50, resampled to 16 kHz.

A repository script (``python tools/fsdd_layout.py FSDD_RECORDINGS OUT``), not
part of the installed package. FSDD (github.com/Jakobovski/free-spoken-digit-dataset,
CC BY-SA 4.0) holds ``{digit}_{speaker}_{take}.wav`` at 8 kHz; this writes
the layout ``recipes/SpeechCommands/sc_prepare.py`` reads, so the Speech
Commands recipe trains on it unchanged (``--n_classes=10``)::

    OUT/
        zero/ one/ ... nine/          # one folder per digit, 16 kHz mono PCM-16
            <speaker>_nohash_<take>.wav
        validation_list.txt           # "three/lucas_nohash_7.wav", one per line
        testing_list.txt

Splits (``--split``):

* ``takes`` (FSDD's conventional split): takes 0-4 of every speaker and
  digit are the test set, takes 5-9 the validation set, the rest (10-49)
  train. Every speaker is in every split, so the name before ``_nohash_``
  (what ``sc_prepare`` checks as the speaker) is ``<speaker>-<take>``, one
  recording session per name, and no name is in two splits.
* ``speakers`` (speaker-held-out): every file of ``--valid-speaker`` is the
  validation set, every file of ``--test-speaker`` the test set, the other
  speakers train.

``--as esc50`` writes ESC-50's layout instead, which
``recipes/ESC50/esc50_prepare.py`` reads (10 classes, 5 folds)::

    OUT/
        audio/<fold>-<speaker><take>-A-<digit>.wav   # 16 kHz mono PCM-16
        meta/esc50.csv   # filename,fold,target,category,esc10,src_file,take

Folds are take groups: fold ``k`` holds takes ``10 (k - 1)`` to
``10 k - 1`` of every speaker and digit (600 recordings), so every speaker
is in every fold and fold 1 holds FSDD's conventional test takes (0-4).
``src_file`` (what ESC-50 keeps within one fold) is ``<speaker><take>``;
``category`` is the digit's word, ``target`` the digit. ESC-50's own clips
are 5 s at 44.1 kHz; the preparation reads any rate (``strict_audio:
False``) and short clips are padded (``fbank_padding`` in the YAML).

Resampling: ``torchaudio.functional.resample`` (band-limited sinc), files
read and written with ``soundfile``.

Authors
 * fastast developers 2026
"""

import argparse
import csv
import os
import re
import sys

import soundfile as sf
import torch
import torchaudio

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("takes", "speakers")
LAYOUTS = ("speechcommands", "esc50")
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
TAKES_PER_FOLD = 10
FILE_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
TEST_TAKES = range(0, 5)
VALID_TAKES = range(5, 10)


def fsdd_recordings(folder):
    """The FSDD files of ``folder`` as ``(path, digit, speaker, take)``, sorted.

    Arguments
    ---------
    folder : str
        FSDD's ``recordings`` folder.

    Returns
    -------
    list of tuple
        ``(path, digit, speaker, take)`` for every ``{digit}_{speaker}_{take}.wav``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> _ = (tmp / "3_lucas_7.wav").write("")
    >>> [r[1:] for r in fsdd_recordings(str(tmp))]
    [(3, 'lucas', 7)]
    """
    found = []
    for name in sorted(os.listdir(folder)):
        match = FILE_NAME.match(name)
        if match:
            digit, speaker, take = match.groups()
            found.append((os.path.join(folder, name), int(digit), speaker, int(take)))
    if not found:
        raise ValueError(
            f"{folder} has no FSDD recordings; expected files named "
            "{digit}_{speaker}_{take}.wav (FSDD's recordings/ folder)"
        )
    return found


def split_of(speaker, take, split="takes", valid_speaker=None, test_speaker=None):
    """Which split a recording belongs to, and its Speech Commands speaker name.

    Arguments
    ---------
    speaker : str
        FSDD speaker.
    take : int
        FSDD take index (0-49).
    split : str
        ``"takes"`` (takes 0-4 test, 5-9 valid) or ``"speakers"``.
    valid_speaker, test_speaker : str, optional
        The held-out speakers of ``"speakers"``.

    Returns
    -------
    tuple of str
        ``(split, name)``: ``"train"``, ``"valid"`` or ``"test"``, and the
        name before ``_nohash_`` (``<speaker>-<take>`` for ``"takes"``).

    Example
    -------
    >>> split_of("lucas", 3), split_of("lucas", 7), split_of("lucas", 30)
    (('test', 'lucas-3'), ('valid', 'lucas-7'), ('train', 'lucas-30'))
    >>> split_of("theo", 3, "speakers", valid_speaker="george", test_speaker="theo")
    ('test', 'theo')
    """
    if split == "takes":
        name = f"{speaker}-{take}"
        if take in TEST_TAKES:
            return "test", name
        return ("valid" if take in VALID_TAKES else "train"), name
    if split == "speakers":
        if speaker == test_speaker:
            return "test", speaker
        return ("valid" if speaker == valid_speaker else "train"), speaker
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def layout_fsdd(
    recordings, out, split="takes", valid_speaker=None, test_speaker=None, sample_rate=16000
):
    """Write FSDD into ``out`` as a Speech Commands folder (see the module docstring).

    Arguments
    ---------
    recordings : str
        FSDD's ``recordings`` folder.
    out : str
        Output folder (created; files already there are overwritten).
    split : str
        ``"takes"`` or ``"speakers"``.
    valid_speaker, test_speaker : str, optional
        Held-out speakers, required with ``"speakers"``.
    sample_rate : int
        Output sampling rate.

    Returns
    -------
    dict
        Split name to number of files.

    Example
    -------
    >>> import numpy as np
    >>> tmp = getfixture("tmpdir")
    >>> for take in range(12):
    ...     sf.write(str(tmp / f"4_theo_{take}.wav"), np.zeros(800), 8000)
    >>> layout_fsdd(str(tmp), str(tmp / "sc"))
    {'train': 2, 'valid': 5, 'test': 5}
    >>> sf.info(str(tmp / "sc" / "four" / "theo-11_nohash_0.wav")).samplerate
    16000
    """
    files = fsdd_recordings(recordings)
    speakers = sorted({speaker for _, _, speaker, _ in files})
    if split == "speakers":
        for name, value in (("valid_speaker", valid_speaker), ("test_speaker", test_speaker)):
            if value not in speakers:
                raise ValueError(
                    f"{name} must be one of the speakers of {recordings} {speakers}, got {value!r}"
                )
        if valid_speaker == test_speaker:
            raise ValueError(f"valid_speaker and test_speaker are both {valid_speaker!r}")
    listed = {"valid": [], "test": []}
    counts = {"train": 0, "valid": 0, "test": 0}
    for path, digit, speaker, take in files:
        which, name = split_of(speaker, take, split, valid_speaker, test_speaker)
        rel = f"{DIGIT_WORDS[digit]}/{name}_nohash_{take if split == 'speakers' else 0}.wav"
        _write_resampled(path, os.path.join(out, rel), sample_rate)
        counts[which] += 1
        if which in listed:
            listed[which].append(rel)
    for which, rels in listed.items():
        with open(os.path.join(out, LISTS[which]), "w") as f:
            f.write("".join(rel + "\n" for rel in rels))
    return counts


def esc50_fold(take):
    """ESC-50 fold (1-5) of an FSDD take: folds are groups of 10 takes.

    Arguments
    ---------
    take : int
        FSDD take index (0-49).

    Returns
    -------
    int

    Example
    -------
    >>> esc50_fold(0), esc50_fold(9), esc50_fold(10), esc50_fold(49)
    (1, 1, 2, 5)
    """
    fold = take // TAKES_PER_FOLD + 1
    if fold > 5:
        raise ValueError(f"FSDD take {take} is outside 0-49: ESC-50 has 5 folds of 10 takes")
    return fold


def layout_fsdd_esc50(recordings, out, sample_rate=16000):
    """Write FSDD into ``out`` in ESC-50's layout (see the module docstring).

    Arguments
    ---------
    recordings : str
        FSDD's ``recordings`` folder.
    out : str
        Output folder (created; files already there are overwritten).
    sample_rate : int
        Output sampling rate.

    Returns
    -------
    dict
        Fold to number of files.

    Example
    -------
    >>> import numpy as np
    >>> tmp = getfixture("tmpdir")
    >>> for take in (3, 12, 49):
    ...     sf.write(str(tmp / f"4_theo_{take}.wav"), np.zeros(800), 8000)
    >>> layout_fsdd_esc50(str(tmp), str(tmp / "esc"))
    {1: 1, 2: 1, 5: 1}
    >>> print((tmp / "esc" / "meta" / "esc50.csv").read().splitlines()[1])
    2-theo12-A-4.wav,2,4,four,False,theo12,A
    """
    rows = []
    for path, digit, speaker, take in fsdd_recordings(recordings):
        fold, source = esc50_fold(take), f"{speaker}{take}"
        name = f"{fold}-{source}-A-{digit}.wav"
        _write_resampled(path, os.path.join(out, "audio", name), sample_rate)
        rows.append((name, fold, digit, DIGIT_WORDS[digit], "False", source, "A"))
    os.makedirs(os.path.join(out, "meta"), exist_ok=True)
    with open(os.path.join(out, "meta", "esc50.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ESC50_COLUMNS)
        writer.writerows(rows)
    counts = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    return dict(sorted(counts.items()))


def _write_resampled(source, target, sample_rate):
    """``source`` at ``sample_rate`` as 16-bit PCM in ``target`` (mono)."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    if audio.shape[1] != 1:
        raise ValueError(f"{source}: {audio.shape[1]} channels, expected mono (FSDD is mono)")
    wav = torch.from_numpy(audio[:, 0])
    if rate != sample_rate:
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Resampling can overshoot full scale by a hair; PCM-16 would wrap it.
    sf.write(target, wav.clamp(-1.0, 1.0).numpy(), sample_rate, subtype="PCM_16")


def main(argv=None):
    """Command line: ``fsdd_layout.py RECORDINGS OUT [--as esc50] [--split ...]``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        Split name (or ESC-50 fold) to number of files.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recordings", help="FSDD's recordings/ folder")
    parser.add_argument("out", help="output folder")
    parser.add_argument(
        "--as",
        dest="layout",
        choices=LAYOUTS,
        default="speechcommands",
        help="the dataset layout to write",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="takes",
        help="Speech Commands layout only (ESC-50's folds are take groups)",
    )
    parser.add_argument("--valid-speaker", help="held-out validation speaker (--split speakers)")
    parser.add_argument("--test-speaker", help="held-out test speaker (--split speakers)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args(argv)
    if args.layout == "esc50":
        if args.split != "takes" or args.valid_speaker or args.test_speaker:
            parser.error(
                "--as esc50 makes 5 folds of takes; --split, --valid-speaker and "
                "--test-speaker are for --as speechcommands"
            )
        counts = layout_fsdd_esc50(args.recordings, args.out, args.sample_rate)
        sys.stdout.write(f"{args.out}: {counts}\n")
        return counts
    counts = layout_fsdd(
        args.recordings,
        args.out,
        args.split,
        args.valid_speaker,
        args.test_speaker,
        args.sample_rate,
    )
    sys.stdout.write(f"{args.out}: {counts}\n")
    return counts


if __name__ == "__main__":
    main()
