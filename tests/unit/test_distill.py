"""Distillation losses, teacher sources and the teacher-logits store.

Expected loss values are written out from the formulas (``dymn_kd_spec.md``
sections 5.2 and 9.6) in plain Python / numpy, independently of the code.

Authors
 * fastast developers 2026
"""

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from fastast_plugin.distill import (
    LogitsStore,
    MultiLabelKDLoss,
    OnlineTeacher,
    SingleLabelKDLoss,
    build_ast_teacher,
    build_dymn_teacher,
    build_teacher,
    main,
    mix_teacher_targets,
    multilabel_kd_loss,
    precompute_teacher_logits,
    singlelabel_kd_loss,
)

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
    out = multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), kd_lambda=lam, temperature=temp)
    assert out.task.item() == pytest.approx(task, abs=1e-6)
    assert out.kd.item() == pytest.approx(kd, abs=1e-6)
    assert out.loss.item() == pytest.approx(lam * task + (1 - lam) * kd, abs=1e-6)
    assert (out.n_kd, out.n_missing) == (3, 0)
    # The module gives the same number (EfficientAT defaults: lambda 0.1, T 1).
    module = MultiLabelKDLoss()(t(Z_S), t(Y_MULTI), t(Z_T))
    expected = 0.1 * task + 0.9 * np_bce(Z_S, np_sigmoid(Z_T)).mean()
    assert module.item() == pytest.approx(expected, abs=1e-6)


def test_multilabel_student_is_not_tempered():
    # With T != 1 only the teacher is divided: dividing the student too changes the value.
    out = multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), kd_lambda=0.0, temperature=3.0)
    tempered_student = np_bce(np.asarray(Z_S) / 3, np_sigmoid(np.asarray(Z_T) / 3)).mean()
    assert out.loss.item() != pytest.approx(tempered_student, abs=1e-3)


def test_singlelabel_loss_matches_the_formula():
    lam, temp = 0.4, 2.0
    log_p = np.log(np_softmax(Z_S))
    task = -(np.asarray(Y_SOFT) * log_p).sum(-1).mean()
    kl = np_kl(np_softmax(np.asarray(Z_T) / temp), np_softmax(np.asarray(Z_S) / temp))
    kd = temp**2 * kl.sum() / 3  # batchmean
    out = singlelabel_kd_loss(t(Z_S), t(Y_SOFT), t(Z_T), kd_lambda=lam, temperature=temp)
    assert out.task.item() == pytest.approx(task, abs=1e-6)
    assert out.kd.item() == pytest.approx(kd, abs=1e-6)
    assert out.loss.item() == pytest.approx(lam * task + (1 - lam) * kd, abs=1e-6)


def test_singlelabel_class_indices_equal_one_hot_targets():
    labels = torch.tensor([2, 0, 1])
    a = singlelabel_kd_loss(t(Z_S), labels, t(Z_T)).loss
    b = singlelabel_kd_loss(t(Z_S), F.one_hot(labels, 3).float(), t(Z_T)).loss
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_lambda_one_is_exactly_the_task_loss():
    teacher = t(Z_T) * 100  # far from the student: any leak would show
    multi = MultiLabelKDLoss(kd_lambda=1.0, temperature=3.0)
    assert torch.equal(
        multi(t(Z_S), t(Y_MULTI), teacher),
        F.binary_cross_entropy_with_logits(t(Z_S), t(Y_MULTI)),
    )
    single = SingleLabelKDLoss(kd_lambda=1.0, temperature=3.0)
    assert torch.equal(single(t(Z_S), t(Y_SOFT), teacher), F.cross_entropy(t(Z_S), t(Y_SOFT)))
    assert torch.equal(single.task_loss(t(Z_S), t(Y_SOFT)), F.cross_entropy(t(Z_S), t(Y_SOFT)))


# ---------------------------------------------------------------------------
# Clips without teacher outputs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [multilabel_kd_loss, singlelabel_kd_loss])
def test_missing_clips_contribute_nothing(fn):
    mask = torch.tensor([True, False, True])
    targets = t(Y_MULTI) if fn is multilabel_kd_loss else t(Y_SOFT)
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
    batch = multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), torch.tensor(mask))
    assert batch.kd.item() == pytest.approx(kept / 3, abs=1e-6)  # EfficientAT: over B
    teacher = multilabel_kd_loss(
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
    loss = loss_fn(student, targets, nan_teacher, torch.zeros(3, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert loss.item() == pytest.approx(0.25 * loss_fn.task_loss(student, targets).item())
    stats = loss_fn.last_stats
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
    mixed, mixed_mask = mix_teacher_targets(probs, lam, perm, mask)
    for b in range(5):
        expected = lam[b] * probs[b] + (1 - lam[b]) * probs[perm[b]]
        assert torch.allclose(mixed[b], expected)
    assert torch.allclose(mixed.sum(-1), torch.ones(5))  # still distributions
    # Clip 0's partner has no teacher: dropped. Clip 1 is unmixed (lam 1): its
    # partner's missing teacher does not matter. Clips 2 and 4 have none.
    assert mixed_mask.tolist() == [False, True, False, True, False]
    same, _ = mix_teacher_targets(probs, 1.0, perm)
    assert torch.equal(same, probs)
    scalar, _ = mix_teacher_targets(probs, 0.6, perm)
    assert torch.allclose(scalar, 0.6 * probs + 0.4 * probs[perm])
    with pytest.raises(ValueError, match="perm must have shape"):
        mix_teacher_targets(probs, 0.5, torch.tensor([0, 1]))


def test_multilabel_loss_mixes_teacher_probabilities():
    lam = np.array([0.8, 0.55, 1.0])
    perm = np.array([2, 0, 1])
    temp = 2.0
    p = np_sigmoid(np.asarray(Z_T) / temp)
    # EfficientAT's form (spec 5.2): the two BCE terms weighted by lam.
    kd = np.mean(
        [
            lam[b] * np_bce(Z_S[b], p[b]).mean() + (1 - lam[b]) * np_bce(Z_S[b], p[perm[b]]).mean()
            for b in range(3)
        ]
    )
    out = multilabel_kd_loss(
        t(Z_S), t(Y_MULTI), t(Z_T), kd_lambda=0.0, temperature=temp,
        lam=torch.tensor(lam), perm=torch.tensor(perm),
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
    loss = loss_fn(
        t(Z_S), t(Y_SOFT), t(Z_T), torch.tensor([True, True, False]),
        lam=torch.tensor(lam), perm=torch.tensor(perm),
    )
    # Clip 1's partner (clip 0) has a teacher, clip 0's partner (2) does not.
    kept = temp**2 * np_kl(q_mix, np_softmax(np.asarray(Z_S) / temp))[1] / 3
    assert loss.item() == pytest.approx(kept, abs=1e-6)
    assert loss_fn.last_stats.n_missing == 2
    full = loss_fn(t(Z_S), t(Y_SOFT), t(Z_T), lam=torch.tensor(lam), perm=torch.tensor(perm))
    assert full.item() == pytest.approx(expected, abs=1e-6)


def test_lam_and_perm_go_together():
    with pytest.raises(ValueError, match="lam and perm"):
        multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), lam=0.5)


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
        multilabel_kd_loss(t(Z_S), t(Y_MULTI), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \[3\]"):
        multilabel_kd_loss(t(Z_S), t(Y_MULTI), t(Z_T), torch.ones(2, dtype=torch.bool))


# ---------------------------------------------------------------------------
# Online teacher
# ---------------------------------------------------------------------------
class RecordingFrontEnd(nn.Module):
    """Adds noise in training mode (like a jittering front-end) and records calls."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, wavs, wav_lens=None):
        self.modes.append(self.training)
        return wavs + torch.randn_like(wavs) if self.training else wavs


def small_teacher():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 4))
    return OnlineTeacher(model, RecordingFrontEnd())


def test_online_teacher_stays_in_eval_mode_under_parent_train():
    torch.manual_seed(0)
    teacher = small_teacher()
    parent = nn.ModuleDict({"student": nn.Linear(8, 4), "teacher": teacher})
    parent.train()
    assert parent["student"].training
    assert not any(m.training for m in teacher.modules())
    stats = teacher.model[1].running_mean.clone()
    x = torch.randn(5, 8)
    first, mask = teacher(x)
    second, _ = teacher(x)
    assert torch.equal(first, second)  # no dropout, no front-end jitter
    assert torch.equal(teacher.model[1].running_mean, stats)  # BN stats untouched
    assert teacher.front_end.modes == [False, False]
    assert mask.dtype == torch.bool and mask.all()
    trainable = [p for p in parent.parameters() if p.requires_grad]
    assert len(trainable) == 2  # the student's weight and bias only


def test_gradients_do_not_reach_the_teacher():
    torch.manual_seed(0)
    teacher = small_teacher()
    student = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    logits, mask = teacher(x)
    assert not logits.requires_grad
    loss = SingleLabelKDLoss(kd_lambda=0.3)(student(x), torch.tensor([0, 1, 2, 3, 0]), logits, mask)
    loss.backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # Even an unfrozen teacher's graph is cut by the loss.
    raw = nn.Linear(8, 4)
    loss = MultiLabelKDLoss()(student(x), torch.zeros(5, 4), raw(x))
    loss.backward()
    assert raw.weight.grad is None


def test_online_teacher_output_forms():
    x = torch.randn(2, 6)

    class Pair(nn.Module):
        def forward(self, feats):
            return feats[:, :3], feats

    assert OnlineTeacher(Pair())(x).logits.shape == (2, 3)
    assert OnlineTeacher(nn.Unflatten(1, (1, 6)))(x).logits.shape == (2, 6)
    with pytest.raises(ValueError, match=r"logits \[2, classes\], got \(2, 1, 2, 3\)"):
        OnlineTeacher(nn.Unflatten(1, (1, 2, 3)))(x)


# ---------------------------------------------------------------------------
# Distilling a tiny AST student
# ---------------------------------------------------------------------------
def tiny_ast(n_classes):
    from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead

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
def test_distillation_moves_the_student_towards_the_teacher(kind):
    torch.manual_seed(0)
    n_classes = 5
    teacher_model = tiny_ast(n_classes)
    with torch.no_grad():  # a confident teacher with a clear preference per class
        teacher_model.head.linear.weight.mul_(5.0)
        teacher_model.head.linear.bias.copy_(torch.randn(n_classes) * 2)
    teacher = OnlineTeacher(teacher_model)
    student = tiny_ast(n_classes)
    loss_fn = (
        SingleLabelKDLoss(kd_lambda=0.0, temperature=1.0)
        if kind == "single"
        else MultiLabelKDLoss(kd_lambda=0.0)
    )
    train_x, held_out = torch.randn(8, 128, 128), torch.randn(8, 128, 128)
    teacher_train, mask = teacher(train_x)
    teacher_held_out, _ = teacher(held_out)

    def held_out_divergence():
        student.eval()
        with torch.no_grad():
            return divergence(kind, teacher_held_out, student(held_out))

    before = held_out_divergence()
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    dummy_targets = torch.zeros(8, n_classes)  # kd_lambda = 0: the teacher alone
    for _ in range(6):
        student.train()
        optimizer.zero_grad()
        loss_fn(student(train_x), dummy_targets, teacher_train, mask).backward()
        optimizer.step()
    after = held_out_divergence()
    assert after < 0.5 * before, (before, after)
    assert all(p.grad is None for p in teacher.parameters())


# ---------------------------------------------------------------------------
# Precomputed store
# ---------------------------------------------------------------------------
class ClipStats(nn.Module):
    """Stand-in teacher on waveforms; its output depends on padding, so batching matters."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, wavs):
        feats = torch.stack(
            [wavs.mean(1), wavs.std(1), wavs.abs().mean(1), wavs.shape[1] / 1000 + 0 * wavs[:, 0]],
            dim=1,
        )
        return self.linear(feats)


@pytest.fixture
def clips(tmp_path):
    """Five 16 kHz clips of three lengths and a manifest (with a start/stop entry)."""
    rng = np.random.default_rng(0)
    lengths = {"a": 1600, "b": 1600, "c": 2400, "d": 1600, "e": 800}
    sigs = {}
    for name, n in lengths.items():
        sigs[name] = (0.3 * rng.standard_normal(n)).astype(np.float32)
        sf.write(tmp_path / f"{name}.wav", sigs[name], 16000, subtype="FLOAT")
    manifest = {k: {"wav": str(tmp_path / f"{k}.wav"), "label": "x"} for k in lengths}
    manifest["f"] = {"wav": {"file": str(tmp_path / "c.wav"), "start": 800, "stop": 2400}}
    sigs["f"] = sigs["c"][800:2400]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(manifest))
    return path, sigs


def alone(teacher, sig):
    """The teacher on one clip, batch of one."""
    return teacher(torch.from_numpy(sig)[None])[0][0]


def test_precompute_round_trip(tmp_path, clips, caplog):
    manifest, sigs = clips
    torch.manual_seed(0)
    teacher = OnlineTeacher(ClipStats())
    store = precompute_teacher_logits(
        teacher, str(manifest), tmp_path / "store", batch_size=2, sample_rate=16000, dtype="float32"
    )
    assert isinstance(store.logits, np.memmap) and store.logits.dtype == np.float32
    assert store.index == {k: i for i, k in enumerate("abcdef")}  # manifest order
    for name, sig in sigs.items():  # every clip as if alone: no padding by other clips
        row = torch.from_numpy(np.array(store.logits[store.index[name]]))
        assert torch.allclose(row, alone(teacher, sig), atol=1e-6), name
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert meta["n_clips"] == 6 and meta["num_classes"] == 3

    with caplog.at_level(logging.WARNING, logger="fastast_plugin.distill"):
        logits, mask = store(torch.zeros(3, 10), None, ["c", "zz", "a"])
    assert mask.tolist() == [True, False, True]
    assert torch.equal(logits[1], torch.zeros(3))
    assert torch.allclose(logits[0], alone(teacher, sigs["c"]), atol=1e-6)
    assert (store.n_missing, store.n_lookups, store.missing_ids) == (1, 3, {"zz"})
    assert "zz" in caplog.text and "no teacher logits" in caplog.text
    store.reset_counts()
    assert store.n_missing == 0

    # The loss of a store lookup: the missing clip gets no KD term.
    loss_fn = MultiLabelKDLoss()
    loss_fn(torch.zeros(3, 3), torch.zeros(3, 3), logits, mask)
    assert loss_fn.last_stats.n_missing == 1


def test_precompute_float16_and_fixed_clip_length(tmp_path, clips):
    manifest, sigs = clips
    torch.manual_seed(0)
    teacher = OnlineTeacher(ClipStats())
    store = precompute_teacher_logits(
        teacher, str(manifest), tmp_path / "s16", batch_size=4, sample_rate=16000,
        clip_seconds=0.125,
    )
    assert store.logits.dtype == np.float16
    for name, sig in sigs.items():
        fixed = np.pad(sig, (0, max(0, 2000 - len(sig))))[:2000]
        row = torch.from_numpy(np.asarray(store.logits[store.index[name]], dtype=np.float32))
        assert torch.allclose(row, alone(teacher, fixed), rtol=2e-3, atol=2e-3), name


def test_precompute_errors(tmp_path, clips):
    manifest, _ = clips
    teacher = OnlineTeacher(ClipStats())
    with pytest.raises(ValueError, match="'a'.*16000 Hz, expected 8000 Hz"):
        precompute_teacher_logits(teacher, str(manifest), tmp_path / "x", sample_rate=8000)
    bad = {"gone": {"wav": str(tmp_path / "gone.wav")}}
    with pytest.raises(ValueError, match="'gone'.*missing"):
        precompute_teacher_logits(teacher, bad, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        precompute_teacher_logits(teacher, str(tmp_path / "nope.json"), tmp_path / "x")
    with pytest.raises(ValueError, match="clip_seconds"):
        precompute_teacher_logits(teacher, str(manifest), tmp_path / "x", clip_seconds=1.0)


def write_store(folder, logits, index):
    folder.mkdir(exist_ok=True)
    np.save(folder / "logits.npy", logits)
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def test_logits_store_errors(tmp_path):
    good = np.zeros((3, 4), dtype=np.float16)
    with pytest.raises(FileNotFoundError, match="logits.npy"):
        LogitsStore(tmp_path / "missing")
    folder = write_store(tmp_path / "count", good, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="maps 2 ids .* 3 rows"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "range", good, {"a": 0, "b": 1, "c": 3})
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "dup", good, {"a": 0, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="2 distinct rows"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "classes", good, {"a": 0, "b": 1, "c": 2})
    with pytest.raises(ValueError, match="4 classes, but the student predicts num_classes=5"):
        LogitsStore(folder, num_classes=5)
    assert len(LogitsStore(folder, num_classes=4)) == 3
    folder = write_store(tmp_path / "list", good, [0, 1, 2])
    with pytest.raises(ValueError, match="must be a JSON object"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "vec", np.zeros(3, np.float32), {})
    with pytest.raises(ValueError, match=r"float array \[clips, classes\]"):
        LogitsStore(folder)


def test_logits_store_refuses_pickles_and_corrupt_files(tmp_path):
    folder = tmp_path / "pickle"
    folder.mkdir()
    np.save(folder / "logits.npy", np.array([[{"x": 1}]], dtype=object), allow_pickle=True)
    (folder / "index.json").write_text('{"a": 0}')
    with pytest.raises(ValueError, match="pickled objects are refused"):
        LogitsStore(folder)
    index = {str(i): i for i in range(50)}
    folder = write_store(tmp_path / "cut", np.ones((50, 4), np.float32), index)
    data = (folder / "logits.npy").read_bytes()
    (folder / "logits.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npy"):
        LogitsStore(folder)
    nan = np.zeros((2, 3), np.float32)
    nan[1, 0] = np.nan
    store = LogitsStore(write_store(tmp_path / "nan", nan, {"a": 0, "b": 1}))
    assert store(None, None, ["a"]).mask.tolist() == [True]
    with pytest.raises(ValueError, match=r"non-finite values for clip ids \['b'\]"):
        store(None, None, ["a", "b"])
    with pytest.raises(ValueError, match="needs the clip ids"):
        store(torch.zeros(1, 4))


# ---------------------------------------------------------------------------
# DyMN teacher and the command line
# ---------------------------------------------------------------------------
def test_cli_precompute_with_a_dymn_teacher(tmp_path):
    from fastast_plugin.dymn import DyMN

    torch.manual_seed(0)
    weights = tmp_path / "teacher.pt"
    torch.save(DyMN(num_classes=4, width_mult=0.4).state_dict(), weights)
    rng = np.random.default_rng(1)
    sigs = {k: (0.1 * rng.standard_normal(4000)).astype(np.float32) for k in ("x", "y")}
    for k, sig in sigs.items():
        sf.write(tmp_path / f"{k}.wav", sig, 16000, subtype="FLOAT")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({k: {"wav": str(tmp_path / f"{k}.wav")} for k in sigs}))
    args = ["precompute", "--manifest", str(manifest), "--out", str(tmp_path / "kd"),
            "--weights", str(weights), "--width-mult", "0.4", "--dtype", "float32"]
    store = main(args + ["--num-classes", "4"])
    teacher = build_dymn_teacher(weights=weights, width_mult=0.4, sample_rate=16000)
    assert isinstance(teacher.front_end.resampler, nn.Module)  # 16 kHz -> 32 kHz
    expected, mask = teacher(torch.from_numpy(np.stack([sigs["x"], sigs["y"]])))
    got, got_mask = LogitsStore(tmp_path / "kd", num_classes=4)(None, None, ["x", "y"])
    assert torch.allclose(got, expected, atol=1e-5) and got_mask.all()
    assert store.num_classes == 4

    with pytest.raises(ValueError, match="--num-classes 5 does not match the teacher's 4"):
        main(args + ["--num-classes", "5"])
    with pytest.raises(ValueError, match="exactly one of name"):
        build_dymn_teacher(name="dymn04_as", checkpoint_dir=tmp_path, weights=weights)
    with pytest.raises(FileNotFoundError, match="dymn04_as.pt"):
        build_dymn_teacher(name="dymn04_as", checkpoint_dir=tmp_path)


# ---------------------------------------------------------------------------
# Recipe teachers: build_teacher and the AST teacher of knowledge flexification
# ---------------------------------------------------------------------------
def test_ast_teacher_is_the_checkpoint_on_its_own_fbank(tmp_path):
    from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
    from fastast_plugin.features import KaldiFbank

    torch.manual_seed(0)
    encoder = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16, tstride=16)
    model = ASTClassifier(encoder, ASTHead(192, 4)).eval()
    path = tmp_path / "fixed.pt"
    torch.save(model.state_dict(), path)
    teacher = build_ast_teacher(path, target_length=64, mean=-6.8, std=5.6, num_classes=4)
    wavs = torch.randn(2, 8000)
    logits, mask = teacher(wavs, torch.tensor([1.0, 0.5]))
    feats = KaldiFbank(target_length=64, mean=-6.8, std=5.6)(wavs, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(logits, model(feats))
    assert mask.all() and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(ValueError, match="has 4 classes, but the student predicts num_classes=5"):
        build_ast_teacher(path, target_length=64, num_classes=5)


def test_build_teacher_sources_folds_and_errors(tmp_path):
    from fastast_plugin.dymn import DyMN

    torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp_path / "t_fold2.pt")
    teacher = build_teacher(
        str(tmp_path / "t_fold{fold}.pt"), num_classes=3, fold=2, width_mult=0.4
    )
    assert isinstance(teacher, OnlineTeacher) and teacher.source == str(tmp_path / "t_fold2.pt")
    np.save(tmp_path / "logits.npy", np.zeros((1, 3), dtype=np.float16))
    (tmp_path / "index.json").write_text('{"a": 0}')
    store = build_teacher(teacher_logits_dir=str(tmp_path), num_classes=3, width_mult=0.4)
    assert isinstance(store, LogitsStore) and store.source == str(tmp_path)
    assert build_teacher("", "", required=False) is None
    with pytest.raises(ValueError, match="got neither"):
        build_teacher("", "")
    with pytest.raises(ValueError, match="got both"):
        build_teacher(str(tmp_path / "t_fold2.pt"), str(tmp_path))
    with pytest.raises(ValueError, match="has no \\{fold\\} placeholder"):
        build_teacher(str(tmp_path / "t_fold2.pt"), fold=2, width_mult=0.4)
    with pytest.raises(FileNotFoundError, match="teacher_checkpoint for fold 1 not found"):
        build_teacher(str(tmp_path / "t_fold{fold}.pt"), fold=1, width_mult=0.4)
    with pytest.raises(ValueError, match="has 3 classes, but the student predicts num_classes=4"):
        build_teacher(str(tmp_path / "t_fold2.pt"), num_classes=4, width_mult=0.4)
    with pytest.raises(ValueError, match="has 3 classes, but the student predicts"):
        build_teacher(teacher_logits_dir=str(tmp_path), num_classes=4)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_teacher(str(tmp_path / "t_fold2.pt"), kind="cnn")
