"""Unit tests for fastast_plugin.brain, metrics and schedulers (the shared recipe machinery).

Authors
 * fastast developers 2026
"""

import json

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F

from fastast_plugin.ast import ASTEncoder, ASTHead
from fastast_plugin.augment import Mixup, SpecAugment
from fastast_plugin.brain import (
    AudioClassifierBrain,
    ForwardOutput,
    classification_loss,
    parse_arguments,
)
from fastast_plugin.distill import SingleLabelKDLoss, TeacherOutput
from fastast_plugin.features import KaldiFbank
from fastast_plugin.metrics import ClassificationStats, summarize_folds
from fastast_plugin.schedulers import WarmupStepDecay


def _brain(device, tmp_path=None, **hparams):
    torch.manual_seed(0)
    modules = {
        "compute_features": KaldiFbank(target_length=32, mean=-6.8, std=5.6),
        "embedding_model": ASTEncoder("tiny224", input_tdim=32, depth=1, fstride=16, tstride=16),
        "classifier": ASTHead(192, 3),
    }
    hparams = {"n_classes": 3, **hparams}
    if tmp_path is not None:
        hparams["output_folder"] = str(tmp_path)
    return AudioClassifierBrain(
        modules,
        opt_class=lambda params: torch.optim.Adam(params, lr=1e-3),
        hparams=hparams,
        run_opts={"device": device, "noprogressbar": True},
    )


def _batch(n=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    items = [
        {
            "id": f"clip{i}",
            "sig": torch.randn(4000 - 300 * (i % 3), generator=generator),
            "label_encoded": torch.tensor([i % 3]),
        }
        for i in range(n)
    ]
    return sb.dataio.batch.PaddedBatch(items)


def _dataset(n=12):
    data = {
        f"clip{i}": {"sig": torch.randn(4000), "label_encoded": torch.tensor([i % 3])}
        for i in range(n)
    }
    return sb.dataio.dataset.DynamicItemDataset(
        data, output_keys=["id", "sig", "label_encoded"]
    )


# ---------------------------------------------------------------------------
# Losses and forward
# ---------------------------------------------------------------------------
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


def test_waveform_mixup_targets_follow_the_mixed_inputs(device):
    brain = _brain(device, mixup=Mixup(prob=1.0, level="waveform"))
    batch = _batch()
    torch.manual_seed(1)
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert isinstance(out, ForwardOutput) and out.mixup is not None
    onehot = F.one_hot(batch.label_encoded.data.view(-1), 3).float().to(device)
    torch.testing.assert_close(out.targets, out.mixup.mix(onehot))
    # the clean waveforms are returned (for a teacher); mixing them gives what
    # the features were computed from
    torch.testing.assert_close(out.wavs, batch.sig.data.to(device))
    feats = brain.modules.compute_features(out.mixup.mix(out.wavs), out.wav_lens)
    emb = brain.modules.embedding_model(feats)
    torch.testing.assert_close(out.logits, brain.modules.classifier(emb).squeeze(1))


def test_no_augmentation_outside_training(device):
    brain = _brain(
        device,
        mixup=Mixup(prob=1.0),
        feature_augment=[SpecAugment(20, 20)],
    )
    batch = _batch()
    brain.modules.eval()
    with torch.no_grad():
        a = brain.compute_forward(batch, sb.Stage.VALID)
        b = brain.compute_forward(batch, sb.Stage.TEST)
    assert a.mixup is None
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.targets.argmax(1).cpu(), batch.label_encoded.data.view(-1))


def test_fbank_mixup_and_feature_augment_run_in_training(device):
    brain = _brain(
        device,
        mixup=Mixup(prob=1.0, level="fbank"),
        feature_augment=[SpecAugment(8, 8)],
    )
    torch.manual_seed(0)
    out = brain.compute_forward(_batch(), sb.Stage.TRAIN)
    assert out.mixup is not None and bool((out.mixup.lam < 1).all())
    assert torch.allclose(out.targets.sum(1), torch.ones(6, device=device))


def test_distillation_seam_uses_teacher_on_clean_wavs_and_mixup(device):
    seen = {}

    def teacher(wavs, wav_lens, ids):
        seen["wavs"], seen["ids"] = wavs, ids
        return TeacherOutput(torch.zeros(len(ids), 3), torch.ones(len(ids), dtype=torch.bool))

    kd_loss = SingleLabelKDLoss(kd_lambda=0.5, temperature=2.0)
    brain = _brain(device, mixup=Mixup(prob=1.0), teacher=teacher, kd_loss=kd_loss)
    batch = _batch()
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.stats = ClassificationStats()
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    torch.testing.assert_close(seen["wavs"], batch.sig.data.to(device))
    assert seen["ids"] == batch.id
    teacher_logits = torch.zeros(6, 3, device=device)
    expected = kd_loss(out.logits, out.targets, teacher_logits, None, out.mixup.lam, out.mixup.perm)
    torch.testing.assert_close(loss, expected)
    # validation keeps the task loss
    valid_loss = brain.compute_objectives(out, batch, sb.Stage.VALID)
    torch.testing.assert_close(valid_loss, classification_loss(out.logits, out.targets).mean())


# ---------------------------------------------------------------------------
# Fit, schedule, evaluation output
# ---------------------------------------------------------------------------
def test_fit_sets_scheduled_lr_and_evaluate_writes_test_metrics(device, tmp_path):
    schedule = WarmupStepDecay(1e-3, warmup_steps=4, decay_start=1, decay_factor=0.5)
    counter = sb.utils.epoch_loop.EpochCounter(2)
    brain = _brain(device, tmp_path, lr_schedule=schedule, epoch_counter=counter)
    seen = []
    original = brain.optimizers_step

    def record_step():
        seen.append((brain._epoch, brain.optimizer_step, brain.optimizer.param_groups[0]["lr"]))
        original()

    brain.optimizers_step = record_step
    loader = {"batch_size": 4}
    brain.fit(
        counter, _dataset(), _dataset(6), train_loader_kwargs=loader, valid_loader_kwargs=loader
    )
    assert [step for _, step, _ in seen] == list(range(6))
    for epoch, step, lr in seen:
        assert lr == pytest.approx(schedule(epoch, step))
    assert seen[0][2] == pytest.approx(2.5e-4) and seen[-1][2] == pytest.approx(5e-4)

    brain.modules.embedding_model.r = 4
    brain.evaluate(_dataset(9), test_loader_kwargs={"batch_size": 4})
    record = json.loads((tmp_path / "test_metrics.json").read_text())
    assert record["clips"] == 9 and record["rank_clips"] == [9]
    assert record["r"] == 4 and record["tokens_in"] == 18 and record["tokens_out"] == 14
    assert record["patch_size"] == [16, 16] and record["world_size"] == 1
    assert 0 <= record["acc"] <= 1 and record["clips_per_s"] > 0


def test_parse_arguments_keeps_short_yaml_keys():
    _, run_opts, overrides = parse_arguments(
        ["x.yaml", "--r=16", "--de", "3", "--debug", "--device=cpu"]
    )
    assert overrides.splitlines() == ["r: 16", "de: 3"]
    assert run_opts.debug and run_opts.device == "cpu"
    with pytest.raises(ValueError, match="--r needs a value"):
        parse_arguments(["x.yaml", "--r"])


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------
def test_stats_count_each_clip_once():
    stats = ClassificationStats()
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    stats.append(["a", "b"], scores, targets, torch.tensor([0.0, 1.0]))
    stats.append(["b"], scores[1:], targets[1:], torch.tensor([1.0]))  # a repeat
    summary = stats.summarize()
    assert summary == {"acc": 0.5, "loss": 0.5, "clips": 2}
    assert stats.rank_clips == [3]


def test_summarize_folds_mean_std_and_missing_fold(tmp_path):
    files = {}
    for fold, acc in enumerate((0.8, 0.9, 1.0), start=1):
        files[f"fold_{fold}"] = tmp_path / f"{fold}.json"
        files[f"fold_{fold}"].write_text(json.dumps({"acc": acc}))
    summary = summarize_folds({k: str(v) for k, v in files.items()}, str(tmp_path))
    assert summary["mean"] == pytest.approx(0.9) and summary["std"] == pytest.approx(0.1)
    assert "0.9000 ± 0.1000" in (tmp_path / "cv_results.md").read_text()
    with pytest.raises(FileNotFoundError, match="fold_9"):
        summarize_folds({"fold_9": str(tmp_path / "nope.json")}, str(tmp_path))


# ---------------------------------------------------------------------------
# Scheduler
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("start,every,decay", [(5, 1, 0.85), (2, 1, 0.5), (10, 5, 0.5)])
def test_step_decay_equals_ast_multisteplr(start, every, decay):
    """AST: MultiStepLR(range(start, 1000, step), gamma) stepped after every epoch."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    reference = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, list(range(start, 1000, every)), gamma=decay
    )
    ours = WarmupStepDecay(1.0, decay_start=start, decay_every=every, decay_factor=decay)
    for epoch in range(1, 30):
        assert ours(epoch, step=10**6) == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()


def test_warmup_is_linear_per_step():
    schedule = WarmupStepDecay(2.0, warmup_steps=10)
    assert [schedule(1, s) for s in (0, 4, 9, 10, 500)] == pytest.approx([0.2, 1.0, 2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="decay_factor"):
        WarmupStepDecay(1.0, decay_factor=1.5)
