"""Training: the Brain, the recipe driver, losses, schedulers, teachers and distillation.

* ``brain``: ``AudioClassifierBrain`` and ``BrainSettings``.
* ``recipe``: what every recipe's ``train.py`` runs (``run_experiment``,
  ``ddp_group``), and the model file and export it writes.
* ``losses``, ``schedulers``, ``averaging``, ``crossval``.
* ``teachers``, ``precompute``, ``efficientat``: teachers for distillation
  and their stored logits.

The top layer under ``cli``: it may import every other subpackage.

Authors
 * fastast developers 2026
"""

from fastast_plugin.training.brain import AudioClassifierBrain, BrainSettings
from fastast_plugin.training.losses import MultiLabelKDLoss, SingleLabelKDLoss
from fastast_plugin.training.schedulers import WarmupStepDecay
from fastast_plugin.training.teachers import build_teacher

__all__ = [
    "AudioClassifierBrain",
    "BrainSettings",
    "MultiLabelKDLoss",
    "SingleLabelKDLoss",
    "WarmupStepDecay",
    "build_teacher",
]
