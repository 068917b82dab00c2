"""Unit tests for fastast_plugin.brain, metrics and schedulers (the shared recipe machinery).

The Brain's patch-size policy and distillation are tested in fits of tiny
models, and the teacher's isolation under DDP in a two-process torchrun.

Authors
 * fastast developers 2026
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
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
    patch_size_value,
)
from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.distill import (
    LogitsStore,
    OnlineTeacher,
    SingleLabelKDLoss,
    TeacherOutput,
)
from fastast_plugin.features import KaldiFbank
from fastast_plugin.flexi import PatchSizeSampler, to_pair
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


# ---------------------------------------------------------------------------
# Patch-size policy (FlexiAST training)
# ---------------------------------------------------------------------------
def _flexible_brain(device, tmp_path=None, checkpointer=None, **hparams):
    torch.manual_seed(0)
    modules = {
        "compute_features": KaldiFbank(target_length=64, mean=-6.8, std=5.6),
        "embedding_model": ASTEncoder(
            "tiny224", input_tdim=64, depth=1, fstride=16, tstride=16, flexible="both"
        ),
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
        checkpointer=checkpointer,
    )


def _record_patch_sizes(brain):
    """(training?, patch size) of every encoder forward."""
    seen = []
    encoder = brain.modules.embedding_model
    encoder.register_forward_pre_hook(
        lambda module, args: seen.append((module.training, module.patch_size))
    )
    return seen


SIZES = [8, 16, 24, (16, 32), 32]


def test_every_training_batch_runs_at_the_sampled_size_and_evaluation_at_eval_size(
    device, tmp_path
):
    sampler = PatchSizeSampler(SIZES, seed=6)
    counter = sb.utils.epoch_loop.EpochCounter(2)
    brain = _flexible_brain(
        device, tmp_path, patch_size_sampler=sampler, epoch_counter=counter,
        model_file=str(tmp_path / "model.pt"),
    )
    seen = _record_patch_sizes(brain)
    loader = {"batch_size": 4}
    brain.fit(counter, _dataset(12), _dataset(6), train_loader_kwargs=loader,
              valid_loader_kwargs=loader)
    reference = PatchSizeSampler(SIZES, seed=6)
    expected = [to_pair(reference()) for _ in range(6)]  # 2 epochs x 3 batches
    assert [size for training, size in seen if training] == expected
    assert len(set(expected)) >= 3 and expected[-1] != (16, 16)
    # validation at the base size (eval_patch_size None), whatever the last draw
    valid = [size for training, size in seen if not training]
    assert valid == [(16, 16)] * 4
    brain.evaluate(_dataset(9), test_loader_kwargs=loader)
    record = json.loads((tmp_path / "test_metrics.json").read_text())
    assert record["patch_size"] == [16, 16] and record["tokens_in"] == 34
    assert record["train_patch_sizes"] == [8, 16, 24, [16, 32], 32]
    # eval_patch_size (an int, or "FxT" from the command line) sets evaluation
    seen.clear()
    brain.hparams.eval_patch_size = "16x32"
    brain.evaluate(_dataset(9), test_loader_kwargs=loader)
    assert {size for _, size in seen} == {(16, 32)}
    assert json.loads((tmp_path / "test_metrics.json").read_text())["patch_size"] == [16, 32]
    # the exported weights are the model: same logits through from_pretrained
    model = from_pretrained(
        tmp_path / "model.pt", input_tdim=64, fstride=16, tstride=16, patch_size=(16, 32)
    )
    feats = torch.randn(2, 64, 128)
    brain.modules.eval()
    with torch.no_grad():
        ours = brain.modules.classifier(brain.modules.embedding_model(feats.to(device)))
        torch.testing.assert_close(model.to(device)(feats.to(device)), ours.squeeze(1))


def test_no_policy_leaves_the_patch_size_alone(device, tmp_path):
    brain = _flexible_brain(device, tmp_path)
    brain.modules.embedding_model.set_patch_size(32)
    seen = _record_patch_sizes(brain)
    brain.evaluate(_dataset(4), test_loader_kwargs={"batch_size": 4})
    assert seen == [(False, (32, 32))]


def test_sampler_is_checkpointed_so_a_resumed_run_continues_its_sequence(device, tmp_path):
    def run(epochs):
        sampler = PatchSizeSampler(SIZES, seed=2)
        counter = sb.utils.epoch_loop.EpochCounter(epochs)
        brain = _flexible_brain(device, patch_size_sampler=sampler, epoch_counter=counter)
        brain.checkpointer = sb.utils.checkpoints.Checkpointer(
            tmp_path / "save",
            recoverables={  # the sampler is not listed: the Brain adds it
                "embedding_model": brain.modules.embedding_model,
                "classifier": brain.modules.classifier,
                "counter": counter,
            },
        )
        seen = _record_patch_sizes(brain)
        loader = {"batch_size": 4}
        brain.fit(counter, _dataset(12), _dataset(4), train_loader_kwargs=loader,
                  valid_loader_kwargs=loader)
        return [size for training, size in seen if training]

    first = run(1)
    resumed = run(2)  # recovers epoch 1, trains epoch 2 only
    reference = PatchSizeSampler(SIZES, seed=2)
    assert first + resumed == [to_pair(reference()) for _ in range(6)]
    assert resumed != first


def test_sampler_needs_a_flexible_encoder(device):
    brain = _brain(device, patch_size_sampler=PatchSizeSampler([16, 32]))
    with pytest.raises(ValueError, match="flexible='none'"):
        brain.fit(range(1, 2), _dataset(4), train_loader_kwargs={"batch_size": 4})


def test_patch_size_value_forms():
    assert patch_size_value(None) is None and patch_size_value(24) == 24
    assert patch_size_value("24") == 24 and patch_size_value("16x48") == (16, 48)
    assert patch_size_value([16, 48]) == (16, 48)
    with pytest.raises(ValueError, match="got '16-48'"):
        patch_size_value("16-48")


# ---------------------------------------------------------------------------
# Distillation in fit: the teacher stays frozen, outside, in eval mode
# ---------------------------------------------------------------------------
class _TrainableLookingTeacher(torch.nn.Module):
    """A teacher built carelessly: trainable, in train mode, with dropout."""

    def __init__(self):
        super().__init__()
        self.front = KaldiFbank(target_length=32, mean=-6.8, std=5.6)
        self.encoder = ASTEncoder("tiny224", input_tdim=32, depth=1, fstride=16, tstride=16)
        self.head = ASTHead(192, 3)
        self.dropout = torch.nn.Dropout(0.5)
        self.calls = []

    def forward(self, wavs, wav_lens, ids):
        self.calls.append((self.training, torch.is_grad_enabled()))
        logits = self.dropout(self.head(self.encoder(self.front(wavs, wav_lens)))).squeeze(1)
        return TeacherOutput(logits, torch.ones(len(ids), dtype=torch.bool, device=wavs.device))


def test_teacher_is_never_optimised_stays_frozen_and_in_eval_mode(device):
    torch.manual_seed(0)
    teacher = _TrainableLookingTeacher().train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    brain = _brain(
        device, teacher=teacher, kd_loss=SingleLabelKDLoss(), mixup=Mixup(prob=1.0)
    )
    student_before = brain.modules.classifier.linear.weight.detach().clone()
    loader = {"batch_size": 4}
    brain.fit(range(1, 3), _dataset(8), _dataset(4), train_loader_kwargs=loader,
              valid_loader_kwargs=loader)
    assert teacher.calls == [(False, False)] * 4  # 2 epochs x 2 batches, eval, no grad
    assert not teacher.training
    teacher_ids = {id(p) for p in teacher.parameters()}
    optimised = {id(p) for group in brain.optimizer.param_groups for p in group["params"]}
    assert optimised and not optimised & teacher_ids
    assert "teacher" not in brain.modules
    for p in teacher.parameters():
        assert not p.requires_grad and p.grad is None
        assert p.device.type == torch.device(device).type
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(value.cpu(), before[key].cpu())
    assert not torch.equal(brain.modules.classifier.linear.weight.detach(), student_before)


def test_kd_counts_clips_without_teacher_outputs_per_epoch(device, tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    known = [f"clip{i}" for i in range(12) if i % 3]  # 8 of 12 clips
    np.save(store_dir / "logits.npy", np.random.default_rng(0).normal(size=(8, 3)).astype("f"))
    (store_dir / "index.json").write_text(json.dumps({k: i for i, k in enumerate(known)}))
    log = tmp_path / "train_log.txt"
    brain = _brain(
        device,
        teacher=LogitsStore(store_dir, num_classes=3),
        kd_loss=SingleLabelKDLoss(),
        train_logger=sb.utils.train_logger.FileTrainLogger(str(log)),
    )
    loader = {"batch_size": 4}
    brain.fit(range(1, 3), _dataset(12), _dataset(4), train_loader_kwargs=loader,
              valid_loader_kwargs=loader)
    lines = [line for line in log.read_text().splitlines() if line.startswith("epoch:")]
    assert len(lines) == 2
    for line in lines:  # per epoch, not cumulative
        assert re.search(r"train kd_missing: 4\b", line), line
        assert re.search(r"train kd_clips: 8\b", line), line
        assert "train kd_task:" in line and "train kd_term:" in line


def test_kd_configuration_errors_and_kd_loss_without_teacher(device):
    loader = {"batch_size": 4}
    encoder = ASTEncoder("tiny224", input_tdim=32, depth=1, fstride=16, tstride=16)
    brain = _brain(device, teacher=OnlineTeacher(torch.nn.Linear(2, 3)))
    with pytest.raises(ValueError, match="teacher but no kd_loss"):
        brain.fit(range(1, 2), _dataset(4), train_loader_kwargs=loader)
    # a teacher that shares the student's parameters (listed in modules too)
    brain = _brain(device, teacher=encoder, kd_loss=SingleLabelKDLoss())
    brain.modules["embedding_model"] = encoder
    with pytest.raises(ValueError, match="shares .* parameters with `modules`"):
        brain.fit(range(1, 2), _dataset(4), train_loader_kwargs=loader)
    # kd_loss without a teacher (flexiast.yaml without teacher_checkpoint): task loss
    brain = _brain(device, kd_loss=SingleLabelKDLoss(kd_lambda=0.1))
    batch = _batch()
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    torch.testing.assert_close(loss, classification_loss(out.logits, out.targets).mean())


DDP_SCRIPT = '''
import json, os, sys
import speechbrain as sb
import torch
from fastast_plugin.ast import ASTEncoder, ASTHead
from fastast_plugin.brain import AudioClassifierBrain
from fastast_plugin.distill import OnlineTeacher, SingleLabelKDLoss
from fastast_plugin.dymn import DyMN, DyMNFrontEnd
from fastast_plugin.features import KaldiFbank
from fastast_plugin.flexi import PatchSizeSampler

run_opts = {"device": "cpu", "distributed_backend": "gloo", "noprogressbar": True}
sb.utils.distributed.ddp_init_group(run_opts)
torch.manual_seed(0)
# DyMN has BatchNorm: wrapped in DDP it would be converted to SyncBatchNorm,
# which fails on the CPU, so the fit itself fails if the teacher is wrapped
teacher = OnlineTeacher(DyMN(num_classes=3, width_mult=0.4), DyMNFrontEnd(orig_sample_rate=16000))
modules = {
    "compute_features": KaldiFbank(target_length=64, mean=-6.8, std=5.6),
    "embedding_model": ASTEncoder("tiny224", input_tdim=64, depth=1, fstride=16,
                                  tstride=16, flexible="both", r=2),
    "classifier": ASTHead(192, 3),
}
hparams = {"n_classes": 3, "teacher": teacher, "kd_loss": SingleLabelKDLoss(),
           "patch_size_sampler": PatchSizeSampler([16, 24, 32], seed=0)}
brain = AudioClassifierBrain(modules, opt_class=lambda p: torch.optim.Adam(p, lr=1e-3),
                             hparams=hparams, run_opts=run_opts)
sizes = []
modules["embedding_model"].register_forward_pre_hook(
    lambda m, a: sizes.append(list(m.patch_size)) if m.training else None)
data = sb.dataio.dataset.DynamicItemDataset(
    {f"c{i}": {"sig": torch.randn(8000), "label_encoded": torch.tensor([i % 3])}
     for i in range(12)}, output_keys=["id", "sig", "label_encoded"])
brain.fit(range(1, 2), data, train_loader_kwargs={"batch_size": 2})
teacher_ids = {id(p) for p in teacher.parameters()}
optimised = {id(p) for g in brain.optimizer.param_groups for p in g["params"]}
record = {
    "student_wrapped": type(brain.modules.embedding_model).__name__,
    "module_names": sorted(brain.modules.keys()),
    "teacher_type": type(brain.hparams.teacher).__name__,
    "teacher_is_same_object": brain.hparams.teacher is teacher,
    "teacher_in_optimizer": bool(teacher_ids & optimised),
    "teacher_training": teacher.training,
    "teacher_grads": [p.grad is not None or p.requires_grad for p in teacher.parameters()],
    "kd_clips": brain.train_stats["kd_clips"],
    "kd_missing": brain.train_stats["kd_missing"],
    "sizes": sizes,
}
rank = torch.distributed.get_rank()
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
    json.dump(record, f)
'''


def test_teacher_is_not_ddp_wrapped_under_torchrun(tmp_path):
    script = tmp_path / "ddp_kd.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(script), str(tmp_path)]
    process = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for record in records:
        assert record["student_wrapped"] == "DistributedDataParallel"  # DDP is on
        assert record["module_names"] == ["classifier", "compute_features", "embedding_model"]
        assert record["teacher_type"] == "OnlineTeacher" and record["teacher_is_same_object"]
        assert not record["teacher_in_optimizer"] and not record["teacher_training"]
        assert not any(record["teacher_grads"])
        assert record["kd_clips"] == 12 and record["kd_missing"] == 0  # summed over ranks
        assert len(record["sizes"]) == 3  # 6 clips per rank, batches of 2
    assert records[0]["sizes"] == records[1]["sizes"]  # same size on every rank per step
