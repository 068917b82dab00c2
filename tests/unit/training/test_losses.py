"""Task and distillation losses: values from the formulas, missing teachers, mixup, errors.

Expected loss values are written out from the formulas in plain Python /
numpy, independently of the code: EfficientAT's multi-label loss
(https://github.com/fschmid56/EfficientAT, ``ex_audioset.py``: BCE against
the labels and against ``sigmoid(teacher / T)``, the two terms mixed with the
student's mixup weights) and the single-label loss of Hinton et al. (2015),
``CE + T^2 KL``.

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.training.losses import (
    MultiLabelKDLoss,
    SingleLabelKDLoss,
    _mix_teacher_targets,
    _multilabel_kd_loss,
    _singlelabel_kd_loss,
    classification_loss,
)
from fastast_plugin.training.teachers import OnlineTeacher


# ----------------------------------------------------------------------
# The task loss
# ----------------------------------------------------------------------
def test_ce_matches_cross_entropy_on_class_indices():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 1, 1, 2])
    per_clip = classification_loss(logits, F.one_hot(labels, 4).float(), "ce")
    torch.testing.assert_close(per_clip, F.cross_entropy(logits, labels, reduction="none"))


def test_bce_matches_bce_with_logits_mean():
    logits = torch.randn(5, 4)
    targets = torch.rand(5, 4)
    per_clip = classification_loss(logits, targets, "bce")
    torch.testing.assert_close(per_clip.mean(), F.binary_cross_entropy_with_logits(logits, targets))


def test_label_smoothing_and_bad_kind():
    logits, targets = torch.zeros(2, 4), torch.eye(4)[:2]
    smoothed = classification_loss(logits, targets, "bce", label_smoothing=0.2)
    expected = F.binary_cross_entropy_with_logits(logits, targets * 0.8 + 0.05, reduction="none")
    torch.testing.assert_close(smoothed, expected.mean(-1))
    with pytest.raises(ValueError, match="loss must be one of"):
        classification_loss(logits, targets, "mse")


# ---------------------------------------------------------------------------
# Reference formulas in numpy (float64)
# ---------------------------------------------------------------------------
Z_S = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.7], [-0.3, 0.8, 0.1]]
Z_T = [[2.0, -2.0, 1.0], [-1.0, 3.0, 0.5], [0.4, -0.6, 1.7]]
Y_MULTI = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
Y_SOFT = [[0.7, 0.3, 0.0], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]]


def np_bce(z, t):
    """BCE with logits, element-wise: -t log s(z) - (1 - t) log(1 - s(z))."""
    z, t = np.asarray(z, float), np.asarray(t, float)
    s = 1 / (1 + np.exp(-z))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


def np_sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, float)))


def np_softmax(z):
    e = np.exp(np.asarray(z, float) - np.max(z, axis=-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_kl(p, q):
    """Per-row KL(p || q), with 0 log 0 = 0."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0.0)
    return terms.sum(-1)


def t(x, **kwargs):
    return torch.tensor(x, dtype=torch.float32, **kwargs)


# ---------------------------------------------------------------------------
# Loss values
# ---------------------------------------------------------------------------
def test_multilabel_loss_matches_the_formula():
    lam, temp = 0.3, 2.0
    task = np_bce(Z_S, Y_MULTI).mean()
    kd = np_bce(Z_S, np_sigmoid(np.asarray(Z_T) / temp)).mean(-1).mean()
    out = _multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), kd_lambda=lam, temperature=temp)
    assert out.task.item() == pytest.approx(task, abs=1e-6)
    assert out.kd.item() == pytest.approx(kd, abs=1e-6)
    assert out.loss.item() == pytest.approx(lam * task + (1 - lam) * kd, abs=1e-6)
    assert (out.n_kd, out.n_missing) == (3, 0)
    # The module gives the same number (EfficientAT defaults: lambda 0.1, T 1).
    module = MultiLabelKDLoss()(t(Z_S), t(Y_MULTI), t(Z_T))
    expected = 0.1 * task + 0.9 * np_bce(Z_S, np_sigmoid(Z_T)).mean()
    assert module.loss.item() == pytest.approx(expected, abs=1e-6)


def test_multilabel_student_is_not_tempered():
    # With T != 1 only the teacher is divided: dividing the student too changes the value.
    out = _multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), kd_lambda=0.0, temperature=3.0)
    tempered_student = np_bce(np.asarray(Z_S) / 3, np_sigmoid(np.asarray(Z_T) / 3)).mean()
    assert out.loss.item() != pytest.approx(tempered_student, abs=1e-3)


def test_singlelabel_loss_matches_the_formula():
    lam, temp = 0.4, 2.0
    log_p = np.log(np_softmax(Z_S))
    task = -(np.asarray(Y_SOFT) * log_p).sum(-1).mean()
    kl = np_kl(np_softmax(np.asarray(Z_T) / temp), np_softmax(np.asarray(Z_S) / temp))
    kd = temp**2 * kl.sum() / 3  # batchmean
    out = _singlelabel_kd_loss(t(Z_S), t(Y_SOFT), t(Z_T), kd_lambda=lam, temperature=temp)
    assert out.task.item() == pytest.approx(task, abs=1e-6)
    assert out.kd.item() == pytest.approx(kd, abs=1e-6)
    assert out.loss.item() == pytest.approx(lam * task + (1 - lam) * kd, abs=1e-6)


def test_singlelabel_class_indices_equal_one_hot_targets():
    labels = torch.tensor([2, 0, 1])
    a = _singlelabel_kd_loss(t(Z_S), labels, t(Z_T)).loss
    b = _singlelabel_kd_loss(t(Z_S), F.one_hot(labels, 3).float(), t(Z_T)).loss
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_lambda_one_is_exactly_the_task_loss():
    teacher = t(Z_T) * 100  # far from the student: any leak would show
    multi = MultiLabelKDLoss(kd_lambda=1.0, temperature=3.0)
    # Exactly the Brain's loss without a teacher; the mean of per-clip means
    # equals PyTorch's mean BCE up to float rounding.
    multi_loss = multi(t(Z_S), t(Y_MULTI), teacher).loss
    assert torch.equal(multi_loss, classification_loss(t(Z_S), t(Y_MULTI), "bce").mean())
    assert multi_loss.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(t(Z_S), t(Y_MULTI)).item(), rel=1e-7
    )
    single = SingleLabelKDLoss(kd_lambda=1.0, temperature=3.0)
    assert torch.equal(single(t(Z_S), t(Y_SOFT), teacher).loss, F.cross_entropy(t(Z_S), t(Y_SOFT)))
    assert torch.equal(single.task_loss(t(Z_S), t(Y_SOFT)), F.cross_entropy(t(Z_S), t(Y_SOFT)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("loss_cls, kind", [(MultiLabelKDLoss, "bce"), (SingleLabelKDLoss, "ce")])
def test_task_term_is_the_classification_loss(loss_cls, kind, smoothing):
    # The same task loss (label smoothing included) with and without a teacher.
    targets = t(Y_MULTI) if kind == "bce" else t(Y_SOFT)
    out = loss_cls(kd_lambda=0.3, label_smoothing=smoothing)(t(Z_S), targets, t(Z_T))
    expected = classification_loss(t(Z_S), targets, kind, smoothing).mean()
    assert torch.equal(out.task, expected)
    if smoothing:
        assert out.task.item() != pytest.approx(
            classification_loss(t(Z_S), targets, kind).mean().item(), abs=1e-4
        )


# ---------------------------------------------------------------------------
# Clips without teacher outputs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [_multilabel_kd_loss, _singlelabel_kd_loss])
def test_missing_clips_contribute_nothing(fn):
    mask = torch.tensor([True, False, True])
    targets = t(Y_MULTI) if fn is _multilabel_kd_loss else t(Y_SOFT)
    results = []
    for row in ([9.0, -9.0, 9.0], [float("nan")] * 3, [float("inf")] * 3):
        student = t(Z_S, requires_grad=True)
        teacher = t(Z_T)
        teacher[1] = t(row)
        out = fn(student, targets, teacher, mask, kd_lambda=0.2)
        out.loss.backward()
        assert torch.isfinite(student.grad).all()
        results.append((out.loss.item(), student.grad.clone()))
    for loss, grad in results[1:]:
        assert loss == results[0][0]
        assert torch.equal(grad, results[0][1])
    assert out.n_missing == 1 and out.n_kd == 2


def test_missing_clip_averaging_batch_and_teacher():
    mask = [True, False, True]
    per_clip = np_bce(Z_S, np_sigmoid(Z_T)).mean(-1)
    kept = per_clip[0] + per_clip[2]
    batch = _multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), torch.tensor(mask))
    assert batch.kd.item() == pytest.approx(kept / 3, abs=1e-6)  # EfficientAT: over B
    teacher = _multilabel_kd_loss(
        t(Z_S), t(Y_MULTI), t(Z_T), torch.tensor(mask), kd_average="teacher"
    )
    assert teacher.kd.item() == pytest.approx(kept / 2, abs=1e-6)


@pytest.mark.parametrize("kd_average", ["batch", "teacher"])
@pytest.mark.parametrize("loss_cls", [MultiLabelKDLoss, SingleLabelKDLoss])
def test_all_missing_gives_the_weighted_task_term(loss_cls, kd_average):
    loss_fn = loss_cls(kd_lambda=0.25, kd_average=kd_average)
    student = t(Z_S, requires_grad=True)
    targets = t(Y_MULTI) if loss_cls is MultiLabelKDLoss else t(Y_SOFT)
    nan_teacher = torch.full((3, 3), float("nan"))
    stats = loss_fn(student, targets, nan_teacher, torch.zeros(3, dtype=torch.bool))
    loss = stats.loss
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert loss.item() == pytest.approx(0.25 * loss_fn.task_loss(student, targets).item())
    assert (stats.kd.item(), stats.n_kd, stats.n_missing) == (0.0, 0, 3)


# ---------------------------------------------------------------------------
# Mixup of teacher targets
# ---------------------------------------------------------------------------
def test_mix_teacher_targets_algebra():
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(5, 6), -1)
    lam = torch.tensor([0.6, 1.0, 0.7, 0.5, 0.9])
    perm = torch.tensor([2, 4, 0, 1, 3])
    mask = torch.tensor([True, True, False, True, False])
    mixed, mixed_mask = _mix_teacher_targets(probs, lam, perm, mask)
    for b in range(5):
        expected = lam[b] * probs[b] + (1 - lam[b]) * probs[perm[b]]
        assert torch.allclose(mixed[b], expected)
    assert torch.allclose(mixed.sum(-1), torch.ones(5))  # still distributions
    # Clip 0's partner has no teacher: dropped. Clip 1 is unmixed (lam 1): its
    # partner's missing teacher does not matter. Clips 2 and 4 have none.
    assert mixed_mask.tolist() == [False, True, False, True, False]
    same, _ = _mix_teacher_targets(probs, 1.0, perm)
    assert torch.equal(same, probs)
    scalar, _ = _mix_teacher_targets(probs, 0.6, perm)
    assert torch.allclose(scalar, 0.6 * probs + 0.4 * probs[perm])
    with pytest.raises(ValueError, match="perm must have shape"):
        _mix_teacher_targets(probs, 0.5, torch.tensor([0, 1]))


def test_multilabel_loss_mixes_teacher_probabilities():
    lam = np.array([0.8, 0.55, 1.0])
    perm = np.array([2, 0, 1])
    temp = 2.0
    p = np_sigmoid(np.asarray(Z_T) / temp)
    # EfficientAT's form (ex_audioset.py): the two BCE terms weighted by lam.
    kd = np.mean(
        [
            lam[b] * np_bce(Z_S[b], p[b]).mean() + (1 - lam[b]) * np_bce(Z_S[b], p[perm[b]]).mean()
            for b in range(3)
        ]
    )
    out = _multilabel_kd_loss(
        t(Z_S),
        t(Y_MULTI),
        t(Z_T),
        kd_lambda=0.0,
        temperature=temp,
        lam=torch.tensor(lam),
        perm=torch.tensor(perm),
    )
    assert out.loss.item() == pytest.approx(kd, abs=1e-6)
    # Mixing logits instead of probabilities would give another value.
    mixed_logits = lam[:, None] * np.asarray(Z_T) + (1 - lam[:, None]) * np.asarray(Z_T)[perm]
    wrong = np_bce(Z_S, np_sigmoid(mixed_logits / temp)).mean()
    assert out.loss.item() != pytest.approx(wrong, abs=1e-4)


def test_singlelabel_loss_mixes_teacher_probabilities():
    lam = np.array([0.8, 0.55, 0.6])
    perm = np.array([2, 0, 1])
    temp = 1.5
    q = np_softmax(np.asarray(Z_T) / temp)
    q_mix = lam[:, None] * q + (1 - lam[:, None]) * q[perm]
    expected = temp**2 * np_kl(q_mix, np_softmax(np.asarray(Z_S) / temp)).mean()
    loss_fn = SingleLabelKDLoss(kd_lambda=0.0, temperature=temp)
    out = loss_fn(
        t(Z_S),
        t(Y_SOFT),
        t(Z_T),
        torch.tensor([True, True, False]),
        lam=torch.tensor(lam),
        perm=torch.tensor(perm),
    )
    loss = out.loss
    # Clip 1's partner (clip 0) has a teacher, clip 0's partner (2) does not.
    kept = temp**2 * np_kl(q_mix, np_softmax(np.asarray(Z_S) / temp))[1] / 3
    assert loss.item() == pytest.approx(kept, abs=1e-6)
    assert out.n_missing == 2
    full = loss_fn(t(Z_S), t(Y_SOFT), t(Z_T), lam=torch.tensor(lam), perm=torch.tensor(perm)).loss
    assert full.item() == pytest.approx(expected, abs=1e-6)


def test_lam_and_perm_go_together():
    with pytest.raises(ValueError, match="lam and perm"):
        _multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), lam=0.5)


# ---------------------------------------------------------------------------
# Argument and shape errors
# ---------------------------------------------------------------------------
def test_loss_errors_name_the_values():
    with pytest.raises(ValueError, match=r"kd_lambda must be in \[0, 1\], got 1.5"):
        MultiLabelKDLoss(kd_lambda=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        SingleLabelKDLoss(temperature=0)
    with pytest.raises(ValueError, match="kd_average"):
        MultiLabelKDLoss(kd_average="mean")
    with pytest.raises(ValueError, match=r"\(3, 4\) does not match .* \(3, 3\)"):
        _multilabel_kd_loss(t(Z_S), t(Y_MULTI), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \[3\]"):
        _multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), torch.ones(2, dtype=torch.bool))


# ---------------------------------------------------------------------------
# Distilling a tiny AST student
# ---------------------------------------------------------------------------
def tiny_ast(n_classes):
    return ASTClassifier(ASTEncoder("tiny224", depth=1, input_tdim=128), ASTHead(192, n_classes))


def divergence(kind, teacher_logits, student_logits):
    """KL(teacher || student): softmax for single-label, mean Bernoulli KL for multi-label."""
    if kind == "single":
        p = torch.log_softmax(teacher_logits, -1)
        q = torch.log_softmax(student_logits, -1)
        return (p.exp() * (p - q)).sum(-1).mean().item()
    log_p, log_q = F.logsigmoid(teacher_logits), F.logsigmoid(student_logits)
    log_np, log_nq = F.logsigmoid(-teacher_logits), F.logsigmoid(-student_logits)
    kl = log_p.exp() * (log_p - log_q) + log_np.exp() * (log_np - log_nq)
    return kl.mean().item()


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_distillation_moves_the_student_towards_the_teacher(kind, device):
    torch.manual_seed(0)
    n_classes = 5
    teacher_model = tiny_ast(n_classes)
    with torch.no_grad():  # a confident teacher with a clear preference per class
        teacher_model.head.linear.weight.mul_(5.0)
        teacher_model.head.linear.bias.copy_(torch.randn(n_classes) * 2)
    teacher = OnlineTeacher(teacher_model).to(device)
    student = tiny_ast(n_classes).to(device)
    loss_fn = (
        SingleLabelKDLoss(kd_lambda=0.0, temperature=1.0)
        if kind == "single"
        else MultiLabelKDLoss(kd_lambda=0.0)
    )
    train_x, held_out = torch.randn(8, 128, 128).to(device), torch.randn(8, 128, 128).to(device)
    teacher_train, mask = teacher(train_x)
    teacher_held_out, _ = teacher(held_out)

    def held_out_divergence():
        student.eval()
        with torch.no_grad():
            return divergence(kind, teacher_held_out, student(held_out))

    before = held_out_divergence()
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    dummy_targets = torch.zeros(8, n_classes, device=device)  # kd_lambda = 0: the teacher alone
    for _ in range(6):
        student.train()
        optimizer.zero_grad()
        loss_fn(student(train_x), dummy_targets, teacher_train, mask).loss.backward()
        optimizer.step()
    after = held_out_divergence()
    assert after < 0.5 * before, (before, after)
    assert all(p.grad is None for p in teacher.parameters())
