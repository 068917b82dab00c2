"""Knowledge distillation: losses, teacher sources and a teacher-logits precompute CLI.

Losses (``kd_lambda`` weights the task term, ``1 - kd_lambda`` the
distillation term, as EfficientAT's ``--kd_lambda``):

* ``MultiLabelKDLoss`` / ``multilabel_kd_loss``: EfficientAT's AudioSet loss
  (``dymn_kd_spec.md`` section 5.2, the same loss as FastAST in
  ``reference_spec.md`` section 3)::

      L = kd_lambda * BCE(z_s, y) + (1 - kd_lambda) * BCE(z_s, sigmoid(z_t / T))

  ``T`` divides the teacher logits only; the student logits are not scaled
  and there is no ``T^2`` factor. Both BCE terms are means over classes.
* ``SingleLabelKDLoss`` / ``singlelabel_kd_loss``: for SpeechCommands,
  ESC-50 and VoxCeleb. EfficientAT has no single-label KD (spec section
  5.2), so this is our choice, the Hinton / CMKD form named in spec section
  9.6::

      L = kd_lambda * CE(z_s, y) + (1 - kd_lambda) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

  CE accepts soft (mixup) targets; KL is summed over classes.

Clips without teacher outputs (``mask`` False) get no distillation term. By
default (``kd_average="batch"``) the per-clip distillation terms are summed
over the clips that have a teacher and divided by the whole batch size ``B``,
as EfficientAT and FastAST do (spec sections 5.2 and 9.6: "zero the KD term
for clips without teacher logits, but keep the mean over the full batch"); for
the single-label loss this is KL's ``batchmean``. ``kd_average="teacher"``
divides by the number of clips that have a teacher instead. Either way a batch
without any teacher output gives a distillation term of exactly 0 (no NaN), so
the loss is ``kd_lambda * task``; the task term is never re-weighted.

Mixup (spec sections 5.2 and 9.6): the teacher's outputs belong to the
*unmixed* clips (a precomputed store always does; run an online teacher on the
unmixed input to get the same). They are turned into probabilities first
(``sigmoid(z_t / T)`` or ``softmax(z_t / T)``) and the *probabilities* are
mixed with the student's mixup weights and permutation,
``lam[b] * p[b] + (1 - lam[b]) * p[perm[b]]`` (``mix_teacher_targets``). For
BCE this is exactly EfficientAT's mixing of the two loss terms (BCE is linear
in its target). A mixed target needs both clips' teacher outputs: clip ``b``
keeps its distillation term only if it and, when ``lam[b] < 1``, its partner
``perm[b]`` have one. (The formula of spec section 5.2 gates on the clip's
own teacher row only, which leaves the partner's term undefined when the
partner has none.) If the teacher instead saw the same mixed input as the
student, pass no ``lam``/``perm``.

Teacher sources share one call, ``teacher(wavs, wav_lens, ids) -> (logits
[B, C], mask [B])``:

* ``OnlineTeacher``: a frozen module (DyMN with ``DyMNFrontEnd``, or any
  AST classifier with its features) run under ``torch.no_grad()`` and
  always in eval mode.
* ``LogitsStore``: precomputed logits, one ``logits.npy`` array ``[N, C]``
  (memory-mapped, read without pickle) and an ``index.json`` ``{clip id:
  row}``, written by ``precompute_teacher_logits`` or
  ``python -m fastast_plugin.distill precompute``.

Recipes build their teacher from YAML with ``build_teacher``: exactly one of
a checkpoint run online (a DyMN, ``build_dymn_teacher``, or a fixed-patch AST
for knowledge flexification, ``build_ast_teacher``) or a logits store; with a
cross-validation fold the path must hold a ``{fold}`` placeholder, so that
each fold gets a teacher that never saw its test clips.

In a Brain (the teacher kept out of ``modules``; ``info`` the ``MixupInfo``
of the student's input, ``targets`` already mixed)::

    teacher_logits, mask = self.hparams.teacher(clean_wavs, wav_lens, batch.id)
    loss = self.hparams.kd_loss(logits, targets, teacher_logits, mask,
                                lam=info.lam, perm=info.perm)
    n_missing = self.hparams.kd_loss.last_stats.n_missing

Authors
 * fastast developers 2026
"""

import argparse
import json
import logging
import os
from typing import Dict, Iterator, List, Literal, NamedTuple, Optional, Sequence, Union

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from speechbrain.dataio.dataio import read_audio
from speechbrain.utils.logger import get_logger
from torch import nn

from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.dataio import audio_problem, fold_path
from fastast_plugin.dymn import (
    DyMN,
    DyMNFrontEnd,
    load_dymn,
    load_dymn_state_dict,
    read_checkpoint,
)
from fastast_plugin.features import KaldiFbank

__all__ = [
    "KDResult",
    "LogitsStore",
    "MultiLabelKDLoss",
    "OnlineTeacher",
    "SingleLabelKDLoss",
    "TeacherOutput",
    "build_ast_teacher",
    "build_dymn_teacher",
    "build_teacher",
    "main",
    "mix_teacher_targets",
    "multilabel_kd_loss",
    "precompute_teacher_logits",
    "singlelabel_kd_loss",
]

logger = get_logger(__name__)

LOGITS_FILE = "logits.npy"
INDEX_FILE = "index.json"
META_FILE = "meta.json"
KD_AVERAGES = ("batch", "teacher")
TEACHER_KINDS = ("dymn", "ast")


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------
class KDResult(NamedTuple):
    """A distillation loss and its parts, for logging.

    Arguments
    ---------
    loss : torch.Tensor
        Scalar ``kd_lambda * task + (1 - kd_lambda) * kd``.
    task : torch.Tensor
        Scalar task term (BCE or CE against ``targets``).
    kd : torch.Tensor
        Scalar distillation term, averaged as ``kd_average`` says.
    n_kd : int
        Clips that received a distillation term.
    n_missing : int
        Clips that did not (no teacher output for the clip or, with mixup,
        for its partner).

    Example
    -------
    >>> r = KDResult(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0), 0, 2)
    >>> r.n_missing
    2
    """

    loss: torch.Tensor
    task: torch.Tensor
    kd: torch.Tensor
    n_kd: int
    n_missing: int


def _check_weights(kd_lambda, temperature, kd_average):
    if not 0.0 <= kd_lambda <= 1.0:
        raise ValueError(f"kd_lambda must be in [0, 1], got {kd_lambda}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if kd_average not in KD_AVERAGES:
        raise ValueError(f"kd_average must be one of {KD_AVERAGES}, got {kd_average!r}")


def _check_teacher(student_logits, teacher_logits, mask):
    """Validates shapes; returns teacher logits and bool mask on the student's device."""
    if student_logits.dim() != 2:
        raise ValueError(
            f"student_logits must be [batch, classes], got {tuple(student_logits.shape)}"
        )
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits shape {tuple(teacher_logits.shape)} does not match "
            f"student_logits shape {tuple(student_logits.shape)} (same batch and "
            "number of classes expected)"
        )
    batch, device = student_logits.shape[0], student_logits.device
    teacher_logits = teacher_logits.detach().to(device)
    if mask is None:
        return teacher_logits, torch.ones(batch, dtype=torch.bool, device=device)
    if mask.shape != (batch,):
        raise ValueError(f"mask must have shape [{batch}], got {tuple(mask.shape)}")
    return teacher_logits, mask.to(device=device, dtype=torch.bool)


def mix_teacher_targets(targets, lam, perm, mask=None):
    """Mixes teacher probabilities with the student's mixup weights and partners.

    Clip ``b`` gets ``lam[b] * targets[b] + (1 - lam[b]) * targets[perm[b]]``,
    the mixup the student's input received (``fastast_plugin.augment.MixupInfo``
    holds ``perm`` and ``lam``). Pass probabilities (``sigmoid`` or
    ``softmax`` of the tempered teacher logits), not logits.

    Arguments
    ---------
    targets : torch.Tensor
        ``[batch, classes]`` teacher probabilities of the unmixed clips.
    lam : float or torch.Tensor
        Weight of each clip itself: a number or ``[batch]``.
    perm : torch.Tensor
        ``[batch]`` partner index of each clip.
    mask : torch.Tensor, optional
        ``[batch]`` bool, which clips have teacher outputs (None: all).

    Returns
    -------
    mixed : torch.Tensor
        ``[batch, classes]`` mixed targets.
    mixed_mask : torch.Tensor
        ``[batch]`` bool: the clip has a teacher output and, when
        ``lam[b] < 1``, so does its partner.

    Example
    -------
    >>> p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> mixed, ok = mix_teacher_targets(p, torch.tensor([0.75, 1.0]), torch.tensor([1, 0]))
    >>> mixed
    tensor([[0.7500, 0.2500],
            [0.0000, 1.0000]])
    >>> mix_teacher_targets(p, 0.5, torch.tensor([1, 0]), torch.tensor([True, False]))[1]
    tensor([False, False])
    """
    batch = targets.shape[0]
    perm = torch.as_tensor(perm, device=targets.device, dtype=torch.long)
    if perm.shape != (batch,):
        raise ValueError(f"perm must have shape [{batch}], got {tuple(perm.shape)}")
    lam = torch.as_tensor(lam, device=targets.device, dtype=targets.dtype)
    if lam.dim() == 0:
        lam = lam.expand(batch)
    if lam.shape != (batch,):
        raise ValueError(f"lam must be a number or have shape [{batch}], got {tuple(lam.shape)}")
    if mask is None:
        mask = torch.ones(batch, dtype=torch.bool, device=targets.device)
    mask = mask.to(device=targets.device, dtype=torch.bool)
    weight = lam.view(-1, *([1] * (targets.dim() - 1)))
    mixed = weight * targets + (1 - weight) * targets[perm]
    mixed_mask = mask & (mask[perm] | (lam >= 1))
    return mixed, mixed_mask


def _teacher_probs(teacher_logits, mask, temperature, kind, lam, perm):
    """Tempered teacher probabilities (mixed if asked) and the mask of usable clips."""
    if (lam is None) != (perm is None):
        raise ValueError("lam and perm must be given together (both or neither)")
    # Rows without a teacher may hold anything (zeros, NaN): never let them in.
    logits = torch.where(mask[:, None], teacher_logits.float(), 0.0)
    logits = logits / temperature
    probs = torch.sigmoid(logits) if kind == "sigmoid" else torch.softmax(logits, -1)
    if lam is None:
        return probs, mask
    return mix_teacher_targets(probs, lam, perm, mask)


def _average(per_clip, mask, kd_average):
    """Sum of the masked per-clip terms over ``B`` or over the clips with a teacher."""
    total = torch.where(mask, per_clip, torch.zeros_like(per_clip)).sum()
    if kd_average == "batch":
        return total / per_clip.shape[0]
    return total / mask.sum().clamp(min=1)


def _combine(task, kd, mask, kd_lambda):
    n_kd = int(mask.sum())
    loss = kd_lambda * task + (1 - kd_lambda) * kd
    return KDResult(loss, task, kd, n_kd, mask.shape[0] - n_kd)


def multilabel_kd_loss(
    student_logits,
    targets,
    teacher_logits,
    mask=None,
    kd_lambda: float = 0.1,
    temperature: float = 1.0,
    lam=None,
    perm=None,
    kd_average: Literal["batch", "teacher"] = "batch",
):
    """EfficientAT's multi-label distillation loss (spec section 5.2).

    ``kd_lambda * mean_{b,c} BCE(z_s, y) + (1 - kd_lambda) * KD`` with
    ``KD = sum_b m_b mean_c BCE(z_s[b], p[b]) / B`` (``kd_average="batch"``)
    and ``p = sigmoid(z_t / temperature)``, mixed with ``(lam, perm)`` when
    given. The student logits are not divided by ``temperature``.

    Arguments
    ---------
    student_logits : torch.Tensor
        ``[batch, classes]``.
    targets : torch.Tensor
        ``[batch, classes]`` multi-hot task targets, already mixed like the
        student's input.
    teacher_logits : torch.Tensor
        ``[batch, classes]`` teacher logits of the unmixed clips (no gradient
        flows into them).
    mask : torch.Tensor, optional
        ``[batch]`` bool, clips that have teacher outputs (None: all).
    kd_lambda : float
        Weight of the task term, in [0, 1].
    temperature : float
        Divides the teacher logits.
    lam : float or torch.Tensor, optional
        Student mixup weights (number or ``[batch]``); with ``perm``.
    perm : torch.Tensor, optional
        Student mixup partners ``[batch]``; with ``lam``.
    kd_average : str
        ``"batch"`` divides the KD sum by the batch size, ``"teacher"`` by
        the number of clips with a distillation term.

    Returns
    -------
    KDResult
        The loss and its parts.

    Example
    -------
    >>> z = torch.zeros(2, 3)
    >>> out = multilabel_kd_loss(z, torch.ones(2, 3), z, torch.tensor([True, False]))
    >>> round(out.loss.item(), 4), round(out.kd.item(), 4), out.n_missing
    (0.3812, 0.3466, 1)
    """
    _check_weights(kd_lambda, temperature, kd_average)
    teacher_logits, mask = _check_teacher(student_logits, teacher_logits, mask)
    logits = student_logits.float()
    task = F.binary_cross_entropy_with_logits(logits, targets.float())
    probs, mask = _teacher_probs(teacher_logits, mask, temperature, "sigmoid", lam, perm)
    per_clip = F.binary_cross_entropy_with_logits(logits, probs, reduction="none").mean(-1)
    return _combine(task, _average(per_clip, mask, kd_average), mask, kd_lambda)


def _soft_cross_entropy(logits, targets, label_smoothing):
    """CE against class indices ``[batch]`` or (soft) target vectors ``[batch, classes]``."""
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets.long(), label_smoothing=label_smoothing)
    return F.cross_entropy(logits, targets.float(), label_smoothing=label_smoothing)


def singlelabel_kd_loss(
    student_logits,
    targets,
    teacher_logits,
    mask=None,
    kd_lambda: float = 0.5,
    temperature: float = 2.0,
    lam=None,
    perm=None,
    kd_average: Literal["batch", "teacher"] = "batch",
    label_smoothing: float = 0.0,
):
    """Single-label distillation: CE plus tempered KL with the ``T^2`` factor.

    ``kd_lambda * CE(z_s, y) + (1 - kd_lambda) * T^2 * KD`` with
    ``KD = sum_b m_b KL(q[b] || softmax(z_s[b] / T)) / B``
    (``kd_average="batch"``, i.e. KL's ``batchmean``) and
    ``q = softmax(z_t / T)``, mixed with ``(lam, perm)`` when given.

    Arguments
    ---------
    student_logits : torch.Tensor
        ``[batch, classes]``.
    targets : torch.Tensor
        Class indices ``[batch]`` or (soft, e.g. mixed) target
        distributions ``[batch, classes]``.
    teacher_logits : torch.Tensor
        ``[batch, classes]`` teacher logits of the unmixed clips.
    mask : torch.Tensor, optional
        ``[batch]`` bool, clips that have teacher outputs (None: all).
    kd_lambda : float
        Weight of the CE term, in [0, 1].
    temperature : float
        Softens both teacher and student distributions in the KL term.
    lam : float or torch.Tensor, optional
        Student mixup weights (number or ``[batch]``); with ``perm``.
    perm : torch.Tensor, optional
        Student mixup partners ``[batch]``; with ``lam``.
    kd_average : str
        ``"batch"`` divides the KL sum by the batch size, ``"teacher"`` by
        the number of clips with a distillation term.
    label_smoothing : float
        Label smoothing of the CE term.

    Returns
    -------
    KDResult
        The loss and its parts; ``kd`` includes the ``T^2`` factor.

    Example
    -------
    >>> z = torch.zeros(2, 4)
    >>> out = singlelabel_kd_loss(z, torch.tensor([0, 1]), z, kd_lambda=1.0)
    >>> round(out.loss.item(), 4), out.kd.item()
    (1.3863, 0.0)
    """
    _check_weights(kd_lambda, temperature, kd_average)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    teacher_logits, mask = _check_teacher(student_logits, teacher_logits, mask)
    logits = student_logits.float()
    task = _soft_cross_entropy(logits, targets, label_smoothing)
    probs, mask = _teacher_probs(teacher_logits, mask, temperature, "softmax", lam, perm)
    log_q = F.log_softmax(logits / temperature, dim=-1)
    per_clip = F.kl_div(log_q, probs, reduction="none").sum(-1)
    kd = temperature**2 * _average(per_clip, mask, kd_average)
    return _combine(task, kd, mask, kd_lambda)


class _KDLoss(nn.Module):
    """Shared plumbing: weights, the loss function and the last batch's stats."""

    def __init__(self, kd_lambda, temperature, kd_average):
        super().__init__()
        _check_weights(kd_lambda, temperature, kd_average)
        self.kd_lambda = float(kd_lambda)
        self.temperature = float(temperature)
        self.kd_average = kd_average
        self.last_stats = None

    def _function_kwargs(self):
        return {
            "kd_lambda": self.kd_lambda,
            "temperature": self.temperature,
            "kd_average": self.kd_average,
        }

    def forward(self, student_logits, targets, teacher_logits, mask=None, lam=None, perm=None):
        """Computes the loss and keeps its parts in ``last_stats``.

        Arguments
        ---------
        student_logits : torch.Tensor
            ``[batch, classes]``.
        targets : torch.Tensor
            Task targets, mixed like the student's input.
        teacher_logits : torch.Tensor
            ``[batch, classes]`` teacher logits of the unmixed clips.
        mask : torch.Tensor, optional
            ``[batch]`` bool, clips that have teacher outputs.
        lam : float or torch.Tensor, optional
            Student mixup weights; with ``perm``.
        perm : torch.Tensor, optional
            Student mixup partners; with ``lam``.

        Returns
        -------
        torch.Tensor
            Scalar loss. ``last_stats`` holds a ``KDResult`` with detached
            ``task`` and ``kd`` and the counts ``n_kd`` / ``n_missing``.
        """
        result = self._loss(student_logits, targets, teacher_logits, mask, lam, perm)
        self.last_stats = KDResult(
            result.loss.detach(),
            result.task.detach(),
            result.kd.detach(),
            result.n_kd,
            result.n_missing,
        )
        return result.loss

    def task_loss(self, student_logits, targets):
        """The task term alone (e.g. for validation, where there is no teacher).

        Arguments
        ---------
        student_logits : torch.Tensor
            ``[batch, classes]``.
        targets : torch.Tensor
            Task targets.

        Returns
        -------
        torch.Tensor
            Scalar task loss, unweighted.
        """
        teacher = torch.zeros_like(student_logits.detach())
        no_teacher = torch.zeros(student_logits.shape[0], dtype=torch.bool)
        return self._loss(student_logits, targets, teacher, no_teacher, None, None).task


class MultiLabelKDLoss(_KDLoss):
    """EfficientAT's multi-label KD loss as a module (see ``multilabel_kd_loss``).

    ``kd_lambda * BCE(z_s, y) + (1 - kd_lambda) * BCE(z_s, sigmoid(z_t / T))``;
    the signature's defaults are EfficientAT's (spec section 5.2).

    Arguments
    ---------
    kd_lambda : float
        Weight of the task term, in [0, 1]; 1 is plain BCE training.
    temperature : float
        Divides the teacher logits.
    kd_average : str
        ``"batch"`` (EfficientAT) or ``"teacher"``, see ``multilabel_kd_loss``.

    Example
    -------
    >>> loss_fn = MultiLabelKDLoss()
    >>> z = torch.zeros(4, 527, requires_grad=True)
    >>> mask = torch.tensor([True, True, True, False])
    >>> loss = loss_fn(z, torch.zeros(4, 527), torch.randn(4, 527), mask)
    >>> loss.backward()
    >>> loss_fn.last_stats.n_missing
    1
    """

    def __init__(
        self,
        kd_lambda: float = 0.1,
        temperature: float = 1.0,
        kd_average: Literal["batch", "teacher"] = "batch",
    ):
        super().__init__(kd_lambda, temperature, kd_average)

    def _loss(self, student_logits, targets, teacher_logits, mask, lam, perm):
        return multilabel_kd_loss(
            student_logits, targets, teacher_logits, mask,
            lam=lam, perm=perm, **self._function_kwargs(),
        )


class SingleLabelKDLoss(_KDLoss):
    """Single-label KD loss as a module (see ``singlelabel_kd_loss``).

    ``kd_lambda * CE(z_s, y) + (1 - kd_lambda) * T^2 * KL(softmax(z_t / T) ||
    softmax(z_s / T))``. EfficientAT has no single-label KD; the defaults are
    our choice (spec section 9.6 names the form, not the values).

    Arguments
    ---------
    kd_lambda : float
        Weight of the CE term, in [0, 1]; 1 is plain CE training.
    temperature : float
        Softening temperature of the KL term.
    kd_average : str
        ``"batch"`` (KL ``batchmean``) or ``"teacher"``.
    label_smoothing : float
        Label smoothing of the CE term.

    Example
    -------
    >>> loss_fn = SingleLabelKDLoss(kd_lambda=0.5, temperature=2.0)
    >>> z = torch.randn(3, 10, requires_grad=True)
    >>> loss_fn(z, torch.tensor([0, 4, 9]), torch.randn(3, 10)).backward()
    >>> loss_fn.last_stats.n_kd
    3
    """

    def __init__(
        self,
        kd_lambda: float = 0.5,
        temperature: float = 2.0,
        kd_average: Literal["batch", "teacher"] = "batch",
        label_smoothing: float = 0.0,
    ):
        super().__init__(kd_lambda, temperature, kd_average)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def _loss(self, student_logits, targets, teacher_logits, mask, lam, perm):
        return singlelabel_kd_loss(
            student_logits, targets, teacher_logits, mask,
            lam=lam, perm=perm, label_smoothing=self.label_smoothing,
            **self._function_kwargs(),
        )


# ---------------------------------------------------------------------------
# Teacher sources
# ---------------------------------------------------------------------------
class TeacherOutput(NamedTuple):
    """What a teacher source returns for a batch.

    Arguments
    ---------
    logits : torch.Tensor
        ``[batch, classes]`` float32 teacher logits (zeros where missing),
        never requiring grad.
    mask : torch.Tensor
        ``[batch]`` bool, which clips have teacher outputs.

    Example
    -------
    >>> logits, mask = TeacherOutput(torch.zeros(2, 3), torch.tensor([True, False]))
    >>> mask.tolist()
    [True, False]
    """

    logits: torch.Tensor
    mask: torch.Tensor


class OnlineTeacher(nn.Module):
    """A frozen teacher run on the fly: ``model(front_end(wavs, wav_lens))``.

    Parameters are frozen (``requires_grad=False``), the forward runs under
    ``torch.no_grad()``, and the module is always in eval mode: ``train()``
    (also when called by a parent, e.g. the Brain's ``modules.train()``)
    keeps it in eval mode, so dropout, batch-norm statistics and the
    front-end's training jitter never apply. Keep it out of the Brain's
    ``modules`` (pass it as a hyperparameter and move it with ``.to(device)``)
    so the optimiser, checkpointer and DDP never see it; if it is listed
    anyway, its frozen parameters get no gradient and SpeechBrain does not
    DDP-wrap modules without trainable parameters.

    DyMN has no padding mask (spec section 9.4): with a padded batch, the
    teacher sees each clip padded with silence to the batch's length. Use
    fixed-length clips, or precompute logits (``precompute_teacher_logits``
    batches equal lengths only).

    Arguments
    ---------
    model : torch.nn.Module
        Maps features to logits ``[batch, classes]`` (also accepted:
        ``[batch, 1, classes]``, or a tuple whose first item is the logits).
    front_end : torch.nn.Module, optional
        Maps ``(wavs, wav_lens)`` to the model's input, e.g.
        ``DyMNFrontEnd(orig_sample_rate=16000)`` or ``KaldiFbank``; None feeds
        the waveforms to the model directly.

    Example
    -------
    >>> teacher = OnlineTeacher(nn.Sequential(nn.Linear(16, 3), nn.Dropout(0.5)))
    >>> parent = nn.ModuleDict({"teacher": teacher}).train()
    >>> logits, mask = teacher(torch.randn(2, 16))
    >>> logits.shape, mask.tolist(), teacher.training, logits.requires_grad
    (torch.Size([2, 3]), [True, True], False, False)
    """

    def __init__(self, model: nn.Module, front_end: Optional[nn.Module] = None):
        super().__init__()
        self.model = model
        self.front_end = front_end
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True):
        """Stays in eval mode whatever ``mode`` is (the teacher never trains).

        Arguments
        ---------
        mode : bool
            Ignored.

        Returns
        -------
        OnlineTeacher
            ``self``, in eval mode.
        """
        return super().train(False)

    def forward(self, wavs, wav_lens=None, ids=None):
        """Teacher logits for a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, samples]`` waveforms (or features when there is no
            front-end).
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]``.
        ids : list of str, optional
            Clip ids (unused; part of the teacher-source interface).

        Returns
        -------
        TeacherOutput
            Float32 logits ``[batch, classes]`` and an all-True mask.
        """
        with torch.no_grad():
            feats = wavs if self.front_end is None else self.front_end(wavs, wav_lens)
            logits = self.model(feats)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        if logits.dim() == 3 and logits.shape[1] == 1:
            logits = logits.squeeze(1)
        if logits.dim() != 2 or logits.shape[0] != wavs.shape[0]:
            raise ValueError(
                f"teacher model must return logits [{wavs.shape[0]}, classes], got "
                f"{tuple(logits.shape)}"
            )
        mask = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        return TeacherOutput(logits.float(), mask)


class LogitsStore:
    """Precomputed teacher logits, looked up by clip id.

    A store is a folder with ``logits.npy`` (float16 or float32 ``[N, C]``,
    opened with ``np.load(mmap_mode="r", allow_pickle=False)``, so rows are
    read from disk on demand) and ``index.json`` (``{clip id: row}``, one id
    per row). ``precompute_teacher_logits`` writes one. Ids not in the
    index get zero logits and ``mask`` False, are counted in ``n_missing``
    and logged (a warning for the first batch with missing ids, debug after).

    Arguments
    ---------
    folder : str
        The store folder.
    num_classes : int, optional
        Number of classes the student predicts; checked against ``C``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> np.save(folder / "logits.npy", np.eye(3, dtype=np.float16))
    >>> _ = (folder / "index.json").write_text('{"a": 0, "b": 1, "c": 2}')
    >>> store = LogitsStore(folder, num_classes=3)
    >>> logits, mask = store(None, None, ["c", "zz"])
    >>> logits.tolist(), mask.tolist(), store.n_missing
    ([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], [True, False], 1)
    """

    def __init__(self, folder: str, num_classes: Optional[int] = None):
        self.folder = os.fspath(folder)
        self.logits = _open_logits(os.path.join(self.folder, LOGITS_FILE))
        self.index = _read_index(os.path.join(self.folder, INDEX_FILE), self.logits.shape[0])
        self.num_classes = int(self.logits.shape[1])
        if num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f"teacher logits store {self.folder!r} has {self.num_classes} classes, "
                f"but the student predicts num_classes={num_classes}"
            )
        self.n_lookups = 0
        self.n_missing = 0
        self.missing_ids = set()

    def __len__(self):
        return len(self.index)

    def reset_counts(self):
        """Sets ``n_lookups``, ``n_missing`` and ``missing_ids`` back to empty (e.g. per epoch)."""
        self.n_lookups = 0
        self.n_missing = 0
        self.missing_ids = set()

    def __call__(self, wavs=None, wav_lens=None, ids=None):
        """Teacher logits for the clips ``ids``.

        Arguments
        ---------
        wavs : torch.Tensor, optional
            Only its device is used (outputs are placed there; CPU if None).
        wav_lens : torch.Tensor, optional
            Unused (teacher-source interface).
        ids : list of str
            Clip ids, e.g. ``batch.id``.

        Returns
        -------
        TeacherOutput
            Float32 logits ``[batch, C]`` (zeros for missing ids) and the mask.
        """
        if ids is None:
            raise ValueError("LogitsStore needs the clip ids (ids=batch.id), got None")
        rows = [self.index.get(str(clip_id), -1) for clip_id in ids]
        found = [i for i, row in enumerate(rows) if row >= 0]
        logits = np.zeros((len(rows), self.num_classes), dtype=np.float32)
        if found:
            logits[found] = self.logits[[rows[i] for i in found]]
        self._check_finite(logits, found, ids)
        self._count_missing([ids[i] for i, row in enumerate(rows) if row < 0], len(rows))
        device = wavs.device if isinstance(wavs, torch.Tensor) else torch.device("cpu")
        mask = torch.zeros(len(rows), dtype=torch.bool)
        mask[found] = True
        return TeacherOutput(torch.from_numpy(logits).to(device), mask.to(device))

    def _check_finite(self, logits, found, ids):
        bad = [ids[i] for i in found if not np.isfinite(logits[i]).all()]
        if bad:
            raise ValueError(
                f"teacher logits store {self.folder!r} holds non-finite values for "
                f"clip ids {bad[:5]}; the store is corrupt, recompute it"
            )

    def _count_missing(self, missing, batch):
        self.n_lookups += batch
        if not missing:
            return
        first_time = self.n_missing == 0
        self.n_missing += len(missing)
        self.missing_ids.update(str(i) for i in missing)
        log = logger.warning if first_time else logger.debug
        log(
            "%d of %d clips have no teacher logits in %s (e.g. %r); they get no "
            "distillation term (%d missing so far)",
            len(missing), batch, self.folder, missing[0], self.n_missing,
        )


def _open_logits(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"teacher logits file {path!r} not found; write the store with "
            "`python -m fastast_plugin.distill precompute ...`"
        )
    try:
        logits = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"teacher logits file {path!r} is not a readable .npy array of numbers "
            f"(pickled objects are refused): {err}"
        ) from err
    if logits.ndim != 2 or logits.dtype.kind != "f":
        raise ValueError(
            f"teacher logits file {path!r} must hold a float array [clips, classes], "
            f"got dtype {logits.dtype} and shape {logits.shape}"
        )
    return logits


def _read_index(path, num_rows):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher logits index {path!r} not found")
    try:
        with open(path) as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"teacher logits index {path!r} is not valid JSON: {err}") from err
    if not isinstance(index, dict):
        raise ValueError(
            f"teacher logits index {path!r} must be a JSON object {{clip id: row}}, "
            f"got {type(index).__name__}"
        )
    rows = list(index.values())
    bad = [
        (k, v) for k, v in index.items()
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_rows
    ]
    if bad:
        raise ValueError(
            f"teacher logits index {path!r}: rows must be integers in [0, {num_rows}) "
            f"(the array has {num_rows} rows), got e.g. {bad[:3]}"
        )
    if len(index) != num_rows or len(set(rows)) != len(rows):
        raise ValueError(
            f"teacher logits index {path!r} maps {len(index)} ids to "
            f"{len(set(rows))} distinct rows, but the array has {num_rows} rows; "
            "expected one id per row"
        )
    return index


# ---------------------------------------------------------------------------
# Precomputing a store
# ---------------------------------------------------------------------------
def _clip_samples(clip_id, wav, sample_rate):
    """Checks a manifest ``wav`` entry's file header; returns its number of samples."""
    path = wav if isinstance(wav, str) else wav["file"]
    problem = audio_problem(path, sample_rate)
    if problem is not None:
        raise ValueError(f"clip {clip_id!r}: audio file {path!r}: {problem}")
    frames = sf.info(path).frames
    if isinstance(wav, dict):
        start = wav.get("start", 0)
        stop = wav.get("stop", frames)
        frames = min(stop if stop != start else frames, frames) - start
    return frames


def _length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[List[int]]:
    """Row batches of at most ``batch_size`` clips, all of one length (shortest first)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batch = []
    for i in order:
        if batch and (len(batch) == batch_size or lengths[i] != lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _load_clip(clip_id, wav, clip_samples):
    """Mono waveform of one clip, padded with zeros or cut to ``clip_samples`` if given."""
    sig = read_audio(wav)
    if sig.dim() != 1:
        raise ValueError(f"clip {clip_id!r}: {sig.shape[1]} channels, expected mono")
    if clip_samples is None:
        return sig
    if sig.shape[0] >= clip_samples:
        return sig[:clip_samples]
    return F.pad(sig, (0, clip_samples - sig.shape[0]))


def _stack(sigs):
    """Zero-padded batch and relative lengths."""
    longest = max(s.shape[0] for s in sigs)
    wavs = torch.stack([F.pad(s, (0, longest - s.shape[0])) for s in sigs])
    wav_lens = torch.tensor([s.shape[0] / longest for s in sigs])
    return wavs, wav_lens


def _read_manifest(manifest):
    if isinstance(manifest, dict):
        return manifest
    if not os.path.isfile(manifest):
        raise FileNotFoundError(f"manifest {os.fspath(manifest)!r} not found")
    with open(manifest) as f:
        entries = json.load(f)
    if not isinstance(entries, dict) or not entries:
        raise ValueError(
            f"manifest {os.fspath(manifest)!r} must be a non-empty JSON object "
            "{clip id: {'wav': path, ...}}"
        )
    return entries


def _write_store(out_dir, logits, ids, meta):
    """Writes ``logits.npy``, ``index.json`` and ``meta.json`` (each atomically)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        LOGITS_FILE: lambda p: np.save(p, logits, allow_pickle=False),
        INDEX_FILE: lambda p: _dump_json({str(k): row for row, k in enumerate(ids)}, p),
        META_FILE: lambda p: _dump_json(meta, p),
    }
    for name, write in paths.items():
        final = os.path.join(out_dir, name)
        tmp = final + ".partial" + os.path.splitext(name)[1]
        write(tmp)
        os.replace(tmp, final)


def _dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def precompute_teacher_logits(
    teacher,
    manifest: Union[str, Dict[str, dict]],
    out_dir: str,
    batch_size: int = 32,
    sample_rate: Optional[int] = None,
    clip_seconds: Optional[float] = None,
    dtype: Literal["float16", "float32"] = "float16",
    device: str = "cpu",
    wav_key: str = "wav",
):
    """Runs a teacher over a SpeechBrain JSON manifest and writes a ``LogitsStore``.

    Audio is read with ``speechbrain.dataio.dataio.read_audio`` at raw
    amplitude (no normalisation). Clips are batched only with clips of the
    same length (after ``clip_seconds`` padding/cutting), so each clip's
    logits do not depend on the others in its batch. Rows follow the
    manifest's order.

    Arguments
    ---------
    teacher : callable
        ``teacher(wavs, wav_lens, ids) -> (logits, mask)``, e.g. an
        ``OnlineTeacher``; a plain ``nn.Module`` mapping waveforms to logits
        is wrapped in one.
    manifest : str or dict
        Path of a JSON manifest ``{id: {"wav": path or {"file", "start",
        "stop"}, ...}}``, or the loaded dict.
    out_dir : str
        Store folder (created; existing store files are replaced).
    batch_size : int
        Clips per teacher call.
    sample_rate : int, optional
        Expected rate of every file, checked from the headers (the rate the
        teacher's front-end expects as input); needed with ``clip_seconds``.
    clip_seconds : float, optional
        Pad with zeros or cut every clip to this duration (e.g. 5.0 for
        ESC-50, DyMN having no padding mask); None keeps each clip's length.
    dtype : str
        ``"float16"`` (enough for logits, spec section 9.5) or ``"float32"``.
    device : str
        Where the teacher runs.
    wav_key : str
        Manifest field holding the audio.

    Returns
    -------
    LogitsStore
        The written store.

    Example
    -------
    >>> import soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.zeros(1600), 16000)
    >>> manifest = {"a": {"wav": str(tmp / "a.wav")}}
    >>> teacher = OnlineTeacher(nn.Linear(1600, 5))
    >>> store = precompute_teacher_logits(teacher, manifest, tmp / "store", sample_rate=16000)
    >>> store.logits.shape, store.index
    ((1, 5), {'a': 0})
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    if clip_seconds is not None and (sample_rate is None or clip_seconds <= 0):
        raise ValueError(
            f"clip_seconds must be > 0 and needs sample_rate, got clip_seconds="
            f"{clip_seconds}, sample_rate={sample_rate}"
        )
    entries = _read_manifest(manifest)
    ids = list(entries)
    wavs = [_manifest_wav(entries, clip_id, wav_key) for clip_id in ids]
    clip_samples = None if clip_seconds is None else round(clip_seconds * sample_rate)
    lengths = [_clip_samples(i, w, sample_rate) for i, w in zip(ids, wavs)]
    if clip_samples is not None:
        lengths = [clip_samples] * len(ids)
    if not isinstance(teacher, (OnlineTeacher, LogitsStore)) and isinstance(teacher, nn.Module):
        teacher = OnlineTeacher(teacher)
    if isinstance(teacher, nn.Module):
        teacher.to(device)
    logits = _run_teacher(teacher, ids, wavs, lengths, clip_samples, batch_size, device, dtype)
    meta = {
        "n_clips": len(ids),
        "num_classes": int(logits.shape[1]),
        "dtype": dtype,
        "sample_rate": sample_rate,
        "clip_seconds": clip_seconds,
        "manifest": None if isinstance(manifest, dict) else os.fspath(manifest),
        "teacher": type(getattr(teacher, "model", teacher)).__name__,
    }
    _write_store(os.fspath(out_dir), logits, ids, meta)
    logger.info("Wrote teacher logits for %d clips to %s", len(ids), out_dir)
    return LogitsStore(out_dir)


def _manifest_wav(entries, clip_id, wav_key):
    entry = entries[clip_id]
    if not isinstance(entry, dict) or wav_key not in entry:
        raise ValueError(f"manifest entry {clip_id!r} has no {wav_key!r} field: {entry!r}")
    return entry[wav_key]


def _run_teacher(teacher, ids, wavs, lengths, clip_samples, batch_size, device, dtype):
    """Teacher logits ``[N, C]`` in manifest order, as a numpy array of ``dtype``."""
    out = None
    batches = list(_length_batches(lengths, batch_size))
    for step, rows in enumerate(batches):
        sigs = [_load_clip(ids[r], wavs[r], clip_samples) for r in rows]
        batch_wavs, wav_lens = _stack(sigs)
        logits, _ = teacher(batch_wavs.to(device), wav_lens.to(device), [ids[r] for r in rows])
        logits = logits.detach().float().cpu().numpy().astype(dtype)
        if not np.isfinite(logits).all():
            raise ValueError(
                f"teacher logits for clips {[ids[r] for r in rows][:5]} are not finite "
                f"in {dtype}"
            )
        if out is None:
            out = np.zeros((len(ids), logits.shape[1]), dtype=dtype)
        out[rows] = logits
        if (step + 1) % 50 == 0:
            logger.info("Teacher logits: batch %d of %d", step + 1, len(batches))
    return out


# ---------------------------------------------------------------------------
# DyMN teachers and the command line
# ---------------------------------------------------------------------------
def build_dymn_teacher(
    name: Optional[str] = None,
    checkpoint_dir: Optional[str] = None,
    weights: Optional[str] = None,
    width_mult: float = 1.0,
    sample_rate: int = 16000,
    download: bool = False,
):
    """A DyMN with its front-end as an ``OnlineTeacher``.

    Either a released EfficientAT checkpoint by ``name`` from
    ``checkpoint_dir`` (``fastast_plugin.dymn.load_dymn``), or a fine-tuned
    state dict file ``weights`` (e.g. an ESC-50 teacher trained without the
    student's test fold) for a DyMN of ``width_mult``; its class count is
    read from the file. The front-end resamples ``sample_rate`` input to
    DyMN's 32 kHz.

    Arguments
    ---------
    name : str, optional
        E.g. ``"dymn10_as"``.
    checkpoint_dir : str, optional
        Folder with the released ``.pt`` files (with ``name``).
    weights : str, optional
        Path of a DyMN state dict (instead of ``name``).
    width_mult : float
        DyMN width for ``weights`` (0.4, 1.0 or 2.0).
    sample_rate : int
        Rate of the input waveforms.
    download : bool
        Download a missing released checkpoint (with ``name``).

    Returns
    -------
    OnlineTeacher
        Frozen, in eval mode.

    Example
    -------
    >>> from fastast_plugin.dymn import DyMN
    >>> path = getfixture("tmp_path") / "teacher.pt"
    >>> torch.save(DyMN(num_classes=7, width_mult=0.4).state_dict(), path)
    >>> teacher = build_dymn_teacher(weights=path, width_mult=0.4)
    >>> teacher(torch.randn(2, 16000))[0].shape
    torch.Size([2, 7])
    """
    if (name is None) == (weights is None):
        raise ValueError(
            f"give exactly one of name (with checkpoint_dir) or weights, got "
            f"name={name!r}, weights={weights!r}"
        )
    if name is not None:
        if checkpoint_dir is None:
            raise ValueError(f"name={name!r} needs checkpoint_dir, got None")
        model = load_dymn(name, checkpoint_dir, download=download)
    else:
        state_dict = read_checkpoint(weights)
        head = state_dict.get("classifier.5.weight")
        if head is None or head.dim() != 2:
            raise ValueError(f"weights {os.fspath(weights)!r} have no 2-D 'classifier.5.weight'")
        model = DyMN(num_classes=int(head.shape[0]), width_mult=width_mult)
        load_dymn_state_dict(model, state_dict)
    return OnlineTeacher(model, DyMNFrontEnd(orig_sample_rate=sample_rate))


def build_ast_teacher(
    checkpoint: str,
    target_length: int,
    mean: Optional[float] = None,
    std: Optional[float] = None,
    sample_rate: int = 16000,
    n_mels: int = 128,
    num_classes: Optional[int] = None,
    **overrides,
):
    """A frozen AST classifier with AST's Kaldi fbank front-end as an ``OnlineTeacher``.

    The teacher of knowledge flexification (FlexiAST): a fixed-patch AST
    classifier (any checkpoint ``fastast_plugin.checkpoints.from_pretrained``
    reads, e.g. the ``model.pt`` a recipe writes after its test) that sees the
    waveforms through its own ``KaldiFbank``, built like the student's, while
    the flexible student trains at random patch sizes.

    Arguments
    ---------
    checkpoint : str
        The classifier checkpoint (with a trained head).
    target_length : int
        Frames of the teacher's input (the recipe's ``target_length``).
    mean : float, optional
        Feature normalisation mean, as the student's front-end.
    std : float, optional
        Feature normalisation standard deviation.
    sample_rate : int
        Rate of the input waveforms.
    n_mels : int
        Mel bands.
    num_classes : int, optional
        Checked against the checkpoint's head.
    **overrides
        More ``from_pretrained`` arguments (e.g. ``fstride``/``tstride`` of an
        AST file whose name does not give them, or ``r``).

    Returns
    -------
    OnlineTeacher
        Frozen, in eval mode.

    Example
    -------
    >>> from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> path = getfixture("tmp_path") / "fixed.pt"
    >>> encoder = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16, tstride=16)
    >>> torch.save(ASTClassifier(encoder, ASTHead(192, 4)).state_dict(), path)
    >>> teacher = build_ast_teacher(path, target_length=64, num_classes=4)
    >>> logits, mask = teacher(torch.randn(2, 8000))
    >>> logits.shape, teacher.training
    (torch.Size([2, 4]), False)
    """
    model = from_pretrained(checkpoint, input_tdim=target_length, input_fdim=n_mels, **overrides)
    classes = model.head.linear.out_features
    if num_classes is not None and classes != num_classes:
        raise ValueError(
            f"teacher checkpoint {os.fspath(checkpoint)!r} has {classes} classes, but "
            f"the student predicts num_classes={num_classes}"
        )
    front_end = KaldiFbank(sample_rate, n_mels, target_length, mean, std)
    return OnlineTeacher(model, front_end)


def build_teacher(
    teacher_checkpoint: Optional[str] = "",
    teacher_logits_dir: Optional[str] = "",
    kind: Literal["dymn", "ast"] = "dymn",
    num_classes: Optional[int] = None,
    fold: Optional[int] = None,
    required: bool = True,
    **kwargs,
):
    """The teacher a recipe's YAML asks for: an online model or a logits store.

    Exactly one of ``teacher_checkpoint`` (run online: a DyMN state dict for
    ``kind="dymn"``, built by ``build_dymn_teacher``; an AST classifier for
    ``kind="ast"``, built by ``build_ast_teacher``) and ``teacher_logits_dir``
    (a ``LogitsStore``) may be set; with neither, the result is None
    (no distillation) unless ``required``. With a cross-validation ``fold``
    the path must contain ``{fold}`` and is formatted with it
    (``fastast_plugin.dataio.fold_path``): a teacher trained on some folds
    has seen the other folds' test clips, so one teacher for every fold would
    leak the test fold. The chosen path is kept in the result's ``source``
    attribute (recorded in ``test_metrics.json``).

    Arguments
    ---------
    teacher_checkpoint : str, optional
        Checkpoint file of an online teacher; empty means unset.
    teacher_logits_dir : str, optional
        Folder of precomputed logits; empty means unset.
    kind : str
        ``"dymn"`` or ``"ast"``: the model in ``teacher_checkpoint``.
    num_classes : int, optional
        The student's classes; the teacher's must match.
    fold : int, optional
        Cross-validation fold (the test fold of this run).
    required : bool
        Raise when neither source is set (True in ``tome_ast_kd.yaml``;
        False in ``flexiast.yaml``, where no teacher means supervised
        flexification).
    **kwargs
        Passed to the builder of ``kind`` (DyMN: ``width_mult``,
        ``sample_rate``; AST: ``target_length``, ``mean``, ``std``,
        ``sample_rate``, ``n_mels``); ignored for a logits store.

    Returns
    -------
    OnlineTeacher, LogitsStore or None
        The teacher.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> for fold in (1, 2):
    ...     torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp / f"t{fold}.pt")
    >>> teacher = build_teacher(str(tmp / "t{fold}.pt"), num_classes=3, fold=2, width_mult=0.4)
    >>> teacher.source.endswith("t2.pt"), teacher(torch.randn(1, 16000))[0].shape
    (True, torch.Size([1, 3]))
    >>> build_teacher("", "", required=False) is None
    True
    """
    given = {
        name: value
        for name, value in (
            ("teacher_checkpoint", teacher_checkpoint),
            ("teacher_logits_dir", teacher_logits_dir),
        )
        if value
    }
    if len(given) > 1:
        raise ValueError(
            "set exactly one teacher source, got both teacher_checkpoint="
            f"{teacher_checkpoint!r} and teacher_logits_dir={teacher_logits_dir!r}"
        )
    if not given:
        if required:
            raise ValueError(
                "no teacher: set exactly one of teacher_checkpoint (a model file run "
                "online) or teacher_logits_dir (a store written by `python -m "
                "fastast_plugin.distill precompute`), got neither"
            )
        logger.info("No teacher set: training without distillation")
        return None
    if kind not in TEACHER_KINDS:
        raise ValueError(f"kind must be one of {TEACHER_KINDS}, got {kind!r}")
    (name, pattern), = given.items()
    path = fold_path(pattern, fold, required=True, name=name)
    if not os.path.exists(path):
        where = "" if fold is None else f" for fold {fold}"
        raise FileNotFoundError(f"{name}{where} not found: {path!r}")
    if name == "teacher_logits_dir":
        teacher = LogitsStore(path, num_classes=num_classes)
    elif kind == "ast":
        teacher = build_ast_teacher(path, num_classes=num_classes, **kwargs)
    else:
        teacher = build_dymn_teacher(weights=path, **kwargs)
        classes = teacher.model.num_classes
        if num_classes is not None and classes != num_classes:
            raise ValueError(
                f"teacher_checkpoint {path!r} has {classes} classes, but the student "
                f"predicts num_classes={num_classes}"
            )
    teacher.source = path
    logger.info("Teacher: %s from %s", type(teacher).__name__, path)
    return teacher


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastast_plugin.distill",
        description="Knowledge-distillation utilities.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pre = commands.add_parser(
        "precompute", help="run a DyMN teacher over a manifest and write a logits store"
    )
    pre.add_argument("--manifest", required=True, help="SpeechBrain JSON manifest")
    pre.add_argument("--out", required=True, help="store folder to write")
    pre.add_argument("--teacher", help="released DyMN name, e.g. dymn10_as")
    pre.add_argument("--checkpoint-dir", help="folder of the released .pt files")
    pre.add_argument("--weights", help="DyMN state dict file (instead of --teacher)")
    pre.add_argument("--width-mult", type=float, default=1.0, help="DyMN width for --weights")
    pre.add_argument("--download", action="store_true", help="download a missing checkpoint")
    pre.add_argument("--sample-rate", type=int, default=16000, help="rate of the audio files")
    pre.add_argument("--clip-seconds", type=float, help="pad/cut every clip to this length")
    pre.add_argument("--num-classes", type=int, help="check the teacher's class count")
    pre.add_argument("--batch-size", type=int, default=32)
    pre.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    pre.add_argument("--device", default="cpu")
    return parser


def main(argv: Optional[Sequence[str]] = None):
    """Command line: ``python -m fastast_plugin.distill precompute --manifest ...``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    LogitsStore
        The written store.

    Example
    -------
    >>> import soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp / "t.pt")
    >>> sf.write(tmp / "a.wav", np.zeros(16000), 16000)
    >>> _ = (tmp / "m.json").write_text(json.dumps({"a": {"wav": str(tmp / "a.wav")}}))
    >>> store = main([
    ...     "precompute", "--manifest", str(tmp / "m.json"), "--out", str(tmp / "kd"),
    ...     "--weights", str(tmp / "t.pt"), "--width-mult", "0.4",
    ... ])
    >>> store.logits.shape
    (1, 3)
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    teacher = build_dymn_teacher(
        name=args.teacher,
        checkpoint_dir=args.checkpoint_dir,
        weights=args.weights,
        width_mult=args.width_mult,
        sample_rate=args.sample_rate,
        download=args.download,
    )
    num_classes = teacher.model.num_classes
    if args.num_classes is not None and args.num_classes != num_classes:
        raise ValueError(
            f"--num-classes {args.num_classes} does not match the teacher's "
            f"{num_classes} classes"
        )
    return precompute_teacher_logits(
        teacher,
        args.manifest,
        args.out,
        batch_size=args.batch_size,
        sample_rate=args.sample_rate,
        clip_seconds=args.clip_seconds,
        dtype=args.dtype,
        device=args.device,
    )


if __name__ == "__main__":
    main()
