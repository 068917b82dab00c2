"""Classification and knowledge-distillation losses.

``classification_loss`` is the task loss of every recipe (CE or BCE against
one-hot, multi-hot or mixed targets). The distillation losses add a term
against a teacher's outputs; their task term *is* ``classification_loss``
(averaged over the batch), so label smoothing applies the same way with and
without a teacher. ``kd_lambda`` weights the task term and ``1 - kd_lambda``
the distillation term, as EfficientAT's ``--kd_lambda``
(https://github.com/fschmid56/EfficientAT, ``ex_audioset.py``):

* ``MultiLabelKDLoss`` / ``_multilabel_kd_loss``: EfficientAT's AudioSet loss
  (Schmid et al., "Efficient Large-Scale Audio Tagging via Transformer-to-CNN
  Knowledge Distillation", ICASSP 2023; the same loss as FastAST)::

      L = kd_lambda * BCE(z_s, y) + (1 - kd_lambda) * BCE(z_s, sigmoid(z_t / T))

  ``T`` divides the teacher logits only; the student logits are not scaled
  and there is no ``T^2`` factor. Both BCE terms are means over classes.
* ``SingleLabelKDLoss`` / ``_singlelabel_kd_loss``: for SpeechCommands,
  ESC-50 and VoxCeleb. EfficientAT has no single-label KD, so this is our
  choice, the form of Hinton et al. (2015)::

      L = kd_lambda * CE(z_s, y) + (1 - kd_lambda) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

  CE accepts soft (mixup) targets; KL is summed over classes.

Clips without teacher outputs (``mask`` False) get no distillation term. By
default (``kd_average="batch"``) the per-clip distillation terms are summed
over the clips that have a teacher and divided by the whole batch size ``B``,
as EfficientAT and FastAST do (their loss is a mean over the full batch);
for the single-label loss this is KL's ``batchmean``.
``kd_average="teacher"`` divides by the number of clips that have a teacher
instead. Either way a batch without any teacher output gives a distillation
term of exactly 0 (no NaN), so the loss is ``kd_lambda * task``; the task
term is never re-weighted.

Mixup: the teacher's outputs belong to the *unmixed* clips (a precomputed
store always does; run an online teacher on the unmixed input to get the
same). They are turned into probabilities first (``sigmoid(z_t / T)`` or
``softmax(z_t / T)``) and the *probabilities* are mixed with the student's
mixup weights and partners by ``fastast_plugin.data.augment.MixupInfo.mix``
(``_mix_teacher_targets``). For BCE this is exactly EfficientAT's mixing of
the two loss terms (BCE is linear in its target). A mixed target needs both
clips' teacher outputs: clip ``b`` keeps its distillation term only if it
and, when ``lam[b] < 1``, its partner ``perm[b]`` have one. If the teacher
instead saw the same mixed input as the student, pass no ``lam``/``perm``.

In a Brain (``info`` the ``MixupInfo`` of the student's input, ``targets``
already mixed)::

    teacher_logits, mask = self.hparams.teacher(clean_wavs, wav_lens, batch.id)
    result = self.hparams.kd_loss(logits, targets, teacher_logits, mask,
                                  lam=info.lam, perm=info.perm)
    loss, n_missing = result.loss, result.n_missing

Authors
 * fastast developers 2026
"""

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fastast_plugin.data.augment import MixupInfo

__all__ = ["LOSSES", "KDResult", "MultiLabelKDLoss", "SingleLabelKDLoss", "classification_loss"]

LOSSES = ("ce", "bce")
_KD_AVERAGES = ("batch", "teacher")


def classification_loss(logits, targets, kind="ce", label_smoothing=0.0):
    """Per-clip classification loss against (soft) target vectors.

    Arguments
    ---------
    logits : torch.Tensor
        ``[batch, classes]``.
    targets : torch.Tensor
        ``[batch, classes]`` one-hot, multi-hot or mixed targets.
    kind : str
        ``"ce"``: softmax cross-entropy with the targets as a probability
        distribution (mixup's soft targets are kept; AST's CE takes their
        argmax instead, which is the same without mixup, as in its ESC-50
        recipe). ``"bce"``: sigmoid binary cross-entropy per class, averaged
        over classes, as AST's ``BCEWithLogitsLoss``.
    label_smoothing : float
        CE: PyTorch's label smoothing. BCE: targets become
        ``t * (1 - s) + s / classes``.

    Returns
    -------
    torch.Tensor
        ``[batch]`` losses, in float32.

    Example
    -------
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    >>> classification_loss(logits, torch.eye(2), "ce")
    tensor([0.1269, 0.6931])
    >>> classification_loss(logits, torch.eye(2), "bce").shape
    torch.Size([2])
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    logits, targets = logits.float(), targets.float()
    if kind == "ce":
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing, reduction="none")
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / targets.shape[-1]
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)


# ---------------------------------------------------------------------------
# Knowledge distillation
# ---------------------------------------------------------------------------
class KDResult(NamedTuple):
    """A distillation loss and its parts, for logging.

    Arguments
    ---------
    loss : torch.Tensor
        Scalar ``kd_lambda * task + (1 - kd_lambda) * kd`` (the one to
        back-propagate).
    task : torch.Tensor
        Scalar task term (``classification_loss`` against ``targets``,
        averaged over the batch).
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


def _check_weights(kd_lambda, temperature, kd_average, label_smoothing):
    if not 0.0 <= kd_lambda <= 1.0:
        raise ValueError(f"kd_lambda must be in [0, 1], got {kd_lambda}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if kd_average not in _KD_AVERAGES:
        raise ValueError(f"kd_average must be one of {_KD_AVERAGES}, got {kd_average!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")


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


def _mix_teacher_targets(targets, lam, perm, mask=None):
    """Mixes teacher probabilities like the student's input, and the mask with them.

    The mixing itself is ``fastast_plugin.data.augment.MixupInfo(perm, lam).mix``:
    clip ``b`` gets ``lam[b] * targets[b] + (1 - lam[b]) * targets[perm[b]]``.
    A mixed target needs both clips' teacher outputs, so clip ``b`` keeps its
    distillation term only if it and, when ``lam[b] < 1``, its partner
    ``perm[b]`` have one. Pass probabilities (``sigmoid`` or ``softmax`` of
    the tempered teacher logits), not logits.

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
    >>> mixed, ok = _mix_teacher_targets(p, torch.tensor([0.75, 1.0]), torch.tensor([1, 0]))
    >>> mixed
    tensor([[0.7500, 0.2500],
            [0.0000, 1.0000]])
    >>> _mix_teacher_targets(p, 0.5, torch.tensor([1, 0]), torch.tensor([True, False]))[1]
    tensor([False, False])
    """
    batch, device = targets.shape[0], targets.device
    perm = torch.as_tensor(perm, device=device, dtype=torch.long)
    if perm.shape != (batch,):
        raise ValueError(f"perm must have shape [{batch}], got {tuple(perm.shape)}")
    lam = torch.as_tensor(lam, device=device, dtype=targets.dtype)
    if lam.dim() == 0:
        lam = lam.expand(batch)
    if lam.shape != (batch,):
        raise ValueError(f"lam must be a number or have shape [{batch}], got {tuple(lam.shape)}")
    if mask is None:
        mask = torch.ones(batch, dtype=torch.bool, device=device)
    mask = mask.to(device=device, dtype=torch.bool)
    mixed = MixupInfo(perm, lam).mix(targets)
    return mixed, mask & (mask[perm] | (lam >= 1))


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
    return _mix_teacher_targets(probs, lam, perm, mask)


def _task_term(logits, targets, kind, label_smoothing):
    """``classification_loss`` over the batch; class indices become one-hot rows."""
    if targets.dim() == 1:
        targets = F.one_hot(targets.long(), logits.shape[-1])
    return classification_loss(logits, targets, kind, label_smoothing).mean()


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


def _multilabel_kd_loss(
    student_logits,
    targets,
    teacher_logits,
    mask=None,
    kd_lambda: float = 0.1,
    temperature: float = 1.0,
    lam=None,
    perm=None,
    kd_average: Literal["batch", "teacher"] = "batch",
    label_smoothing: float = 0.0,
):
    """EfficientAT's multi-label distillation loss (AudioSet, BCE on both terms).

    ``kd_lambda * task + (1 - kd_lambda) * KD`` with the task term
    ``classification_loss(z_s, y, "bce", label_smoothing)`` averaged over the
    batch, ``KD = sum_b m_b mean_c BCE(z_s[b], p[b]) / B``
    (``kd_average="batch"``) and ``p = sigmoid(z_t / temperature)``, mixed
    with ``(lam, perm)`` when given. The student logits are not divided by
    ``temperature`` (EfficientAT's ``ex_audioset.py`` training loop).

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
    label_smoothing : float
        Label smoothing of the task term (as ``classification_loss``).

    Returns
    -------
    KDResult
        The loss and its parts.

    Example
    -------
    >>> z = torch.zeros(2, 3)
    >>> out = _multilabel_kd_loss(z, torch.ones(2, 3), z, torch.tensor([True, False]))
    >>> round(out.loss.item(), 4), round(out.kd.item(), 4), out.n_missing
    (0.3812, 0.3466, 1)
    """
    _check_weights(kd_lambda, temperature, kd_average, label_smoothing)
    teacher_logits, mask = _check_teacher(student_logits, teacher_logits, mask)
    logits = student_logits.float()
    task = _task_term(logits, targets, "bce", label_smoothing)
    probs, mask = _teacher_probs(teacher_logits, mask, temperature, "sigmoid", lam, perm)
    per_clip = F.binary_cross_entropy_with_logits(logits, probs, reduction="none").mean(-1)
    return _combine(task, _average(per_clip, mask, kd_average), mask, kd_lambda)


def _singlelabel_kd_loss(
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

    ``kd_lambda * task + (1 - kd_lambda) * T^2 * KD`` with the task term
    ``classification_loss(z_s, y, "ce", label_smoothing)`` averaged over the
    batch, ``KD = sum_b m_b KL(q[b] || softmax(z_s[b] / T)) / B``
    (``kd_average="batch"``, i.e. KL's ``batchmean``) and
    ``q = softmax(z_t / T)``, mixed with ``(lam, perm)`` when given: the
    distillation loss of Hinton et al., "Distilling the Knowledge in a Neural
    Network" (2015).

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
    >>> out = _singlelabel_kd_loss(z, torch.tensor([0, 1]), z, kd_lambda=1.0)
    >>> round(out.loss.item(), 4), out.kd.item()
    (1.3863, 0.0)
    """
    _check_weights(kd_lambda, temperature, kd_average, label_smoothing)
    teacher_logits, mask = _check_teacher(student_logits, teacher_logits, mask)
    logits = student_logits.float()
    task = _task_term(logits, targets, "ce", label_smoothing)
    probs, mask = _teacher_probs(teacher_logits, mask, temperature, "softmax", lam, perm)
    log_q = F.log_softmax(logits / temperature, dim=-1)
    per_clip = F.kl_div(log_q, probs, reduction="none").sum(-1)
    kd = temperature**2 * _average(per_clip, mask, kd_average)
    return _combine(task, kd, mask, kd_lambda)


class _KDLoss(nn.Module):
    """Shared plumbing of the loss modules: the weights and the loss function."""

    kind = "ce"

    def __init__(self, kd_lambda, temperature, kd_average, label_smoothing):
        super().__init__()
        _check_weights(kd_lambda, temperature, kd_average, label_smoothing)
        self.kd_lambda = float(kd_lambda)
        self.temperature = float(temperature)
        self.kd_average = kd_average
        self.label_smoothing = float(label_smoothing)

    @staticmethod
    def loss_function(*args, **kwargs):
        """The functional form (``_multilabel_kd_loss`` or ``_singlelabel_kd_loss``)."""
        raise NotImplementedError

    def forward(self, student_logits, targets, teacher_logits, mask=None, lam=None, perm=None):
        """Computes the loss and its parts.

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
        KDResult
            ``loss`` to back-propagate, the ``task`` and ``kd`` terms and the
            counts ``n_kd`` / ``n_missing``.
        """
        return self.loss_function(
            student_logits,
            targets,
            teacher_logits,
            mask,
            kd_lambda=self.kd_lambda,
            temperature=self.temperature,
            lam=lam,
            perm=perm,
            kd_average=self.kd_average,
            label_smoothing=self.label_smoothing,
        )

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
        return _task_term(student_logits.float(), targets, self.kind, self.label_smoothing)


class MultiLabelKDLoss(_KDLoss):
    """EfficientAT's multi-label KD loss as a module (see ``_multilabel_kd_loss``).

    ``kd_lambda * BCE(z_s, y) + (1 - kd_lambda) * BCE(z_s, sigmoid(z_t / T))``;
    the defaults are EfficientAT's (``--kd_lambda 0.1``, temperature 1 in its
    ``ex_audioset.py``).

    Arguments
    ---------
    kd_lambda : float
        Weight of the task term, in [0, 1]; 1 is plain BCE training.
    temperature : float
        Divides the teacher logits.
    kd_average : str
        ``"batch"`` (EfficientAT) or ``"teacher"``, see ``_multilabel_kd_loss``.
    label_smoothing : float
        Label smoothing of the task term.

    Example
    -------
    >>> loss_fn = MultiLabelKDLoss()
    >>> z = torch.zeros(4, 527, requires_grad=True)
    >>> mask = torch.tensor([True, True, True, False])
    >>> out = loss_fn(z, torch.zeros(4, 527), torch.randn(4, 527), mask)
    >>> out.loss.backward()
    >>> out.n_missing
    1
    """

    kind = "bce"
    loss_function = staticmethod(_multilabel_kd_loss)

    def __init__(
        self,
        kd_lambda: float = 0.1,
        temperature: float = 1.0,
        kd_average: Literal["batch", "teacher"] = "batch",
        label_smoothing: float = 0.0,
    ):
        super().__init__(kd_lambda, temperature, kd_average, label_smoothing)


class SingleLabelKDLoss(_KDLoss):
    """Single-label KD loss as a module (see ``_singlelabel_kd_loss``).

    ``kd_lambda * CE(z_s, y) + (1 - kd_lambda) * T^2 * KL(softmax(z_t / T) ||
    softmax(z_s / T))``. EfficientAT has no single-label KD; the defaults are
    our choice.

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
    >>> out = loss_fn(z, torch.tensor([0, 4, 9]), torch.randn(3, 10))
    >>> out.loss.backward()
    >>> out.n_kd
    3
    """

    kind = "ce"
    loss_function = staticmethod(_singlelabel_kd_loss)

    def __init__(
        self,
        kd_lambda: float = 0.5,
        temperature: float = 2.0,
        kd_average: Literal["batch", "teacher"] = "batch",
        label_smoothing: float = 0.0,
    ):
        super().__init__(kd_lambda, temperature, kd_average, label_smoothing)
