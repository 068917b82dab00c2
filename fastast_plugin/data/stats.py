"""Feature statistics of a dataset: the ``fbank_mean`` / ``fbank_std`` of a recipe.

AST normalises its Kaldi filterbanks with the mean and standard deviation of
the training set's features (``(x - mean) / (2 * std)``, ``KaldiFbank``); a
new dataset needs its own (a common question on AST's tracker, ast#16).
``_feature_stats`` computes them with the package's ``KaldiFbank``, before
normalisation and over each clip's own frames only: the zero padding to
``target_length`` is never counted (AST's ``get_norm_stats.py`` averages
over padded, augmented batches, which pulls the numbers towards zero for
short clips). ``fastast stats`` prints them as YAML lines to paste into a
recipe's hparams.

Authors
 * fastast developers 2026
"""

import argparse
import math
from pathlib import Path

import torch
from speechbrain.dataio.dataio import load_data_csv
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.dataio import read_manifest
from fastast_plugin.models.features import KaldiFbank

__all__ = ["main"]

logger = get_logger(__name__)

_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _dataset_audio(source, data_root=None, wav_key="wav"):
    """The audio of a dataset: the ``wav`` entries of a JSON manifest, or a folder's files.

    Arguments
    ---------
    source : str or os.PathLike
        A JSON manifest as the recipes write it (``{id: {"wav": ...}}``), a
        SpeechBrain CSV manifest (``ID`` and ``wav`` columns) or a folder,
        searched recursively for ``_AUDIO_SUFFIXES`` files.
    data_root : str, optional
        Replaces ``{data_root}`` in the manifest's paths.
    wav_key : str
        Key of the audio in each manifest entry (a path, or SpeechBrain's
        ``{"file", "start", "stop"}`` segment).

    Returns
    -------
    list
        Audio sources for ``fastast_plugin.data.audio.load_audio``, in order.

    Example
    -------
    >>> import json
    >>> path = getfixture("tmp_path") / "train.json"
    >>> _ = path.write_text(json.dumps({"a": {"wav": "{data_root}/a.wav", "label": "yes"}}))
    >>> _dataset_audio(path, data_root="/data")
    ['/data/a.wav']
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES)
        if not files:
            raise ValueError(f"{source} holds no audio files ({', '.join(_AUDIO_SUFFIXES)})")
        return [str(p) for p in files]
    replacements = None if data_root is None else {"data_root": data_root}
    if source.suffix.lower() == ".csv":  # SpeechBrain's CSV manifests (an ID column)
        entries = load_data_csv(str(source), replacements or {})
    else:
        entries = read_manifest(str(source), replacements)
    missing = [key for key, entry in entries.items() if wav_key not in entry]
    if missing or not entries:
        raise ValueError(
            f"manifest {source}: every entry needs {wav_key!r}; "
            + (f"entries {missing[:3]} have none" if missing else "it holds no entries")
        )
    return [entry[wav_key] for entry in entries.values()]


def _feature_stats(audio, sample_rate=16000, n_mels=128, target_length=None):
    """Mean and standard deviation of ``KaldiFbank`` features over a dataset.

    Every value of every clip's filterbank (frames x mel bands, before
    normalisation) counts once; padding never does. With ``target_length``
    the frames past it, which the model never sees (crop), are left out too.

    Arguments
    ---------
    audio : list
        Audio files or segments (see ``_dataset_audio``).
    sample_rate : int
        Rate the features are computed at (files at other rates are
        resampled).
    n_mels : int
        Mel bands.
    target_length : int, optional
        Frames the recipe crops to.

    Returns
    -------
    tuple of float
        ``(mean, std)`` (population standard deviation), for
        ``KaldiFbank(mean=..., std=...)``.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> sf.write(path, np.random.default_rng(0).normal(0, 0.1, 16000), 16000)
    >>> mean, std = _feature_stats([path])
    >>> -10 < mean < 10 and std > 0
    True
    """
    fbank = KaldiFbank(sample_rate, n_mels)
    # float64 sums: millions of values, one pass
    total, total_sq, count = 0.0, 0.0, 0
    with torch.no_grad():
        for clip in audio:
            feats = fbank(load_audio(clip, sample_rate)[None])[0, :target_length]
            feats = feats.double()
            total += feats.sum().item()
            total_sq += feats.square().sum().item()
            count += feats.numel()
    mean = total / count
    std = math.sqrt(max(total_sq / count - mean * mean, 0.0))
    logger.info("%d clips, %d feature values: mean %.6f, std %.6f", len(audio), count, mean, std)
    return mean, std


def main(argv=None, prog=None):
    """Run ``fastast stats``: print ``fbank_mean`` / ``fbank_std`` of a dataset as YAML.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); ``--help`` lists them.
    prog : str, optional
        Program name for ``--help``.

    Returns
    -------
    tuple of float
        ``(mean, std)``.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> folder = getfixture("tmp_path")
    >>> sf.write(str(folder / "a.wav"), np.zeros(16000), 16000)
    >>> _ = main([str(folder)])  # doctest: +ELLIPSIS
    fbank_mean: -15.942385
    fbank_std: 0.000000
    """
    parser = argparse.ArgumentParser(
        prog=prog or "fastast stats",
        description="Mean and std of the Kaldi fbank features of a dataset (before "
        "normalisation, padding excluded): the fbank_mean / fbank_std of a recipe.",
    )
    parser.add_argument("source", help="JSON manifest (the training set's) or a folder of audio")
    parser.add_argument("--data-root", help="replaces {data_root} in the manifest")
    parser.add_argument("--wav-key", default="wav", help="audio key of the manifest entries")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--n-mels", type=int, default=128)
    parser.add_argument(
        "--target-length", type=int, help="frames the recipe crops to (default: all frames)"
    )
    args = parser.parse_args(argv)
    audio = _dataset_audio(args.source, args.data_root, args.wav_key)
    mean, std = _feature_stats(audio, args.sample_rate, args.n_mels, args.target_length)
    print(f"fbank_mean: {mean:.6f}\nfbank_std: {std:.6f}")
    return mean, std
