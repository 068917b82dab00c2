"""Data: the one audio loader, manifests and datasets, crops, augmentation, sampling, AudioSet.

* ``audio``: ``load_audio`` (any rate and channel count, resampled).
* ``dataio``: manifests, SpeechBrain datasets, bad-file reports.
* ``crops``: random / centre crops of long recordings.
* ``augment``: mixup, SpecAugment, noise and roll.
* ``sampling``: class-balanced sampling; the DDP rank and world size; evaluation shards.
* ``audioset``, ``shards``: AudioSet's files and WebDataset shards.
* ``stats``: a dataset's feature mean and std (``fastast stats``).
* ``synthetic``: generated datasets in the real layouts, for tests and demos.

Imports ``weights`` and ``models`` only.

Authors
 * fastast developers 2026
"""

from fastast_plugin.data.audio import AudioError, load_audio
from fastast_plugin.data.augment import Mixup, NoiseRoll, SpecAugment
from fastast_plugin.data.dataio import fold_path

__all__ = ["AudioError", "Mixup", "NoiseRoll", "SpecAugment", "fold_path", "load_audio"]
