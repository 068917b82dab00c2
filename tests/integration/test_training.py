"""Tiny end-to-end trainings with ``AudioClassifierBrain`` and ``run_experiment`` (CPU by default).

Each test fits a 1-block AST for one or two epochs on random clips: the
learning-rate schedule, the FlexiAST patch-size policy and its checkpointed
sampler, distillation with a frozen teacher (also under a two-process
torchrun), the shared recipe block (fit, test, model file, sweep) and a
run that must learn.

Authors
 * fastast developers 2026
"""

import json
import re

import numpy as np
import pytest
import speechbrain as sb
import torch

from fastast_plugin.data.augment import Mixup
from fastast_plugin.models.ast import ASTEncoder, ASTHead
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.flexi import PatchSizeSampler
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.training.losses import SingleLabelKDLoss
from fastast_plugin.training.recipe import _write_model_file, run_experiment
from fastast_plugin.training.schedulers import WarmupStepDecay
from fastast_plugin.training.teachers import LogitsStore, TeacherOutput
from fastast_plugin.weights.resize import parse_patch_size


def _loader():
    """Loader arguments (a fresh dict: SpeechBrain's fit adds keys to the one it gets)."""
    return {"batch_size": 4}


def _record_patch_sizes(brain):
    """(training?, patch size) of every encoder forward."""
    seen = []
    encoder = brain.modules.embedding_model
    encoder.register_forward_pre_hook(
        lambda module, args: seen.append((module.training, module.patch_size))
    )
    return seen


def test_fit_sets_scheduled_lr_and_evaluate_writes_test_metrics(
    device, tmp_path, tiny_brain, clip_dataset
):
    schedule = WarmupStepDecay(1e-3, warmup_steps=4, decay_start=1, decay_factor=0.5)
    counter = sb.utils.epoch_loop.EpochCounter(2)
    brain = tiny_brain(
        device,
        lr_schedule=schedule,
        epoch_counter=counter,
        test_metrics_file=str(tmp_path / "test_metrics.json"),
    )
    seen = []
    original = brain.optimizers_step

    def record_step():
        seen.append((brain.epoch, brain.optimizer_step, brain.optimizer.param_groups[0]["lr"]))
        original()

    brain.optimizers_step = record_step
    brain.fit(
        counter,
        clip_dataset(),
        clip_dataset(6),
        train_loader_kwargs=_loader(),
        valid_loader_kwargs=_loader(),
    )
    assert [step for _, step, _ in seen] == list(range(6))
    for epoch, step, lr in seen:
        assert lr == pytest.approx(schedule(epoch, step))
    assert seen[0][2] == pytest.approx(2.5e-4) and seen[-1][2] == pytest.approx(5e-4)

    brain.modules.embedding_model.r = 4
    brain.evaluate(clip_dataset(9), test_loader_kwargs=_loader())
    record = json.loads((tmp_path / "test_metrics.json").read_text())
    assert record["clips"] == 9 and record["rank_clips"] == [9]
    assert record["r"] == 4 and record["tokens_in"] == 18 and record["tokens_out"] == 14
    assert record["patch_size"] == [16, 16] and record["world_size"] == 1
    assert 0 <= record["acc"] <= 1 and record["clips_per_s"] > 0


# ---------------------------------------------------------------------------
# Patch-size policy (FlexiAST training)
# ---------------------------------------------------------------------------
SIZES = [8, 16, 24, (16, 32), 32]


def test_every_training_batch_runs_at_the_sampled_size_and_evaluation_at_eval_size(
    device, tmp_path, tiny_brain, clip_dataset
):
    sampler = PatchSizeSampler(SIZES, seed=6)
    counter = sb.utils.epoch_loop.EpochCounter(2)
    metrics = tmp_path / "test_metrics.json"
    brain = tiny_brain(
        device,
        flexible="both",
        patch_size_sampler=sampler,
        epoch_counter=counter,
        test_metrics_file=str(metrics),
    )
    seen = _record_patch_sizes(brain)
    brain.fit(
        counter,
        clip_dataset(12),
        clip_dataset(6),
        train_loader_kwargs=_loader(),
        valid_loader_kwargs=_loader(),
    )
    reference = PatchSizeSampler(SIZES, seed=6)
    expected = [parse_patch_size(reference()) for _ in range(6)]  # 2 epochs x 3 batches
    assert [size for training, size in seen if training] == expected
    assert len(set(expected)) >= 3 and expected[-1] != (16, 16)
    # validation at the base size (eval_patch_size None), whatever the last draw
    valid = [size for training, size in seen if not training]
    assert valid == [(16, 16)] * 4
    brain.evaluate(clip_dataset(9), test_loader_kwargs=_loader())
    record = json.loads(metrics.read_text())
    assert record["patch_size"] == [16, 16] and record["tokens_in"] == 34
    assert record["train_patch_sizes"] == [8, 16, 24, [16, 32], 32]
    # eval_patch_size (an int, or "FxT" from the command line) sets evaluation
    seen.clear()
    brain.settings.eval_patch_size = "16x32"
    brain.evaluate(clip_dataset(9), test_loader_kwargs=_loader())
    assert {size for _, size in seen} == {(16, 32)}
    assert json.loads(metrics.read_text())["patch_size"] == [16, 32]
    # the written weights are the model: same logits through from_pretrained
    _write_model_file(brain, str(tmp_path / "model.pt"))
    model = from_pretrained(
        tmp_path / "model.pt", input_tdim=64, fstride=16, tstride=16, patch_size=(16, 32)
    )
    feats = torch.randn(2, 64, 128)
    brain.modules.eval()
    with torch.no_grad():
        ours = brain.modules.classifier(brain.modules.embedding_model(feats.to(device)))
        torch.testing.assert_close(model.to(device)(feats.to(device)), ours.squeeze(1))


def test_no_policy_leaves_the_patch_size_alone(device, tiny_brain, clip_dataset):
    brain = tiny_brain(device, flexible="both")
    brain.modules.embedding_model.set_patch_size(32)
    seen = _record_patch_sizes(brain)
    brain.evaluate(clip_dataset(4), test_loader_kwargs=_loader())
    assert seen == [(False, (32, 32))]


def test_sampler_is_checkpointed_so_a_resumed_run_continues_its_sequence(
    device, tmp_path, tiny_brain, clip_dataset
):
    def run(epochs):
        sampler = PatchSizeSampler(SIZES, seed=2)
        counter = sb.utils.epoch_loop.EpochCounter(epochs)
        brain = tiny_brain(
            device, flexible="both", patch_size_sampler=sampler, epoch_counter=counter
        )
        brain.checkpointer = sb.utils.checkpoints.Checkpointer(
            tmp_path / "save",
            recoverables={  # the sampler is not listed: the Brain adds it
                "embedding_model": brain.modules.embedding_model,
                "classifier": brain.modules.classifier,
                "counter": counter,
            },
        )
        seen = _record_patch_sizes(brain)
        brain.fit(
            counter,
            clip_dataset(12),
            clip_dataset(4),
            train_loader_kwargs=_loader(),
            valid_loader_kwargs=_loader(),
        )
        return [size for training, size in seen if training]

    first = run(1)
    resumed = run(2)  # recovers epoch 1, trains epoch 2 only
    reference = PatchSizeSampler(SIZES, seed=2)
    assert first + resumed == [parse_patch_size(reference()) for _ in range(6)]
    assert resumed != first


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


def test_teacher_is_never_optimised_stays_frozen_and_in_eval_mode(device, tiny_brain, clip_dataset):
    torch.manual_seed(0)
    teacher = _TrainableLookingTeacher().train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    brain = tiny_brain(device, teacher=teacher, kd_loss=SingleLabelKDLoss(), mixup=Mixup(prob=1.0))
    student_before = brain.modules.classifier.linear.weight.detach().clone()
    brain.fit(
        range(1, 3),
        clip_dataset(8),
        clip_dataset(4),
        train_loader_kwargs=_loader(),
        valid_loader_kwargs=_loader(),
    )
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


def test_kd_counts_clips_without_teacher_outputs_per_epoch(
    device, tmp_path, tiny_brain, clip_dataset
):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    known = [f"clip{i}" for i in range(12) if i % 3]  # 8 of 12 clips
    np.save(store_dir / "logits.npy", np.random.default_rng(0).normal(size=(8, 3)).astype("f"))
    (store_dir / "index.json").write_text(json.dumps({k: i for i, k in enumerate(known)}))
    log = tmp_path / "train_log.txt"
    brain = tiny_brain(
        device,
        teacher=LogitsStore(store_dir, num_classes=3),
        kd_loss=SingleLabelKDLoss(),
        train_logger=sb.utils.train_logger.FileTrainLogger(str(log)),
    )
    brain.fit(
        range(1, 3),
        clip_dataset(12),
        clip_dataset(4),
        train_loader_kwargs=_loader(),
        valid_loader_kwargs=_loader(),
    )
    lines = [line for line in log.read_text().splitlines() if line.startswith("epoch:")]
    assert len(lines) == 2
    for line in lines:  # per epoch, not cumulative
        assert re.search(r"train kd_missing: 4\b", line), line
        assert re.search(r"train kd_clips: 8\b", line), line
        assert "train kd_task:" in line and "train kd_term:" in line


DDP_SCRIPT = """
import json, os, sys
import speechbrain as sb
import torch
from fastast_plugin.models.ast import ASTEncoder, ASTHead
from fastast_plugin.training.brain import AudioClassifierBrain
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.flexi import PatchSizeSampler
from fastast_plugin.training.losses import SingleLabelKDLoss
from fastast_plugin.training.recipe import ddp_group
from fastast_plugin.training.teachers import OnlineTeacher

run_opts = {"device": "cpu", "distributed_backend": "gloo", "noprogressbar": True}
with ddp_group(run_opts):
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
    settings = {"n_classes": 3, "teacher": teacher, "kd_loss": SingleLabelKDLoss(),
                "patch_size_sampler": PatchSizeSampler([16, 24, 32], seed=0)}
    brain = AudioClassifierBrain(modules, opt_class=lambda p: torch.optim.Adam(p, lr=1e-3),
                                 hparams={"brain_settings": settings}, run_opts=run_opts)
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
        "teacher_type": type(brain.settings.teacher).__name__,
        "teacher_is_same_object": brain.settings.teacher is teacher,
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
"""


def test_teacher_is_not_ddp_wrapped_under_torchrun(two_gloo_ranks):
    records = two_gloo_ranks(DDP_SCRIPT)
    for record in records:
        assert record["student_wrapped"] == "DistributedDataParallel"  # DDP is on
        assert record["module_names"] == ["classifier", "compute_features", "embedding_model"]
        assert record["teacher_type"] == "OnlineTeacher" and record["teacher_is_same_object"]
        assert not record["teacher_in_optimizer"] and not record["teacher_training"]
        assert not any(record["teacher_grads"])
        assert record["kd_clips"] == 12 and record["kd_missing"] == 0  # summed over ranks
        assert len(record["sizes"]) == 3  # 6 clips per rank, batches of 2
    assert records[0]["sizes"] == records[1]["sizes"]  # same size on every rank per step


# ---------------------------------------------------------------------------
# The recipes' shared block: fit, test, model file, sweep
# ---------------------------------------------------------------------------
def _separable_dataset(n, seed=0):
    """Clips whose class is the pitch of a tone: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    data = {}
    for i in range(n):
        label = i % 3
        freq = (300, 1200, 4000)[label]
        t = torch.arange(4000) / 16000
        sig = torch.sin(2 * torch.pi * freq * t) + 0.05 * torch.randn(4000, generator=generator)
        data[f"clip{i}"] = {"sig": sig, "label_encoded": torch.tensor([label])}
    return sb.dataio.dataset.DynamicItemDataset(data, output_keys=["id", "sig", "label_encoded"])


def test_run_experiment_fits_tests_writes_the_model_and_sweeps(device, tmp_path):
    torch.manual_seed(0)
    counter = sb.utils.epoch_loop.EpochCounter(8)
    encoder = ASTEncoder("tiny224", input_tdim=32, depth=1, fstride=16, tstride=16, flexible="both")
    head = ASTHead(192, 3)
    modules = {
        "compute_features": KaldiFbank(target_length=32, mean=-6.8, std=5.6),
        "embedding_model": encoder,
        "classifier": head,
    }
    hparams = {
        "modules": modules,
        "opt_class": lambda params: torch.optim.Adam(params, lr=1e-3),
        "checkpointer": sb.utils.checkpoints.Checkpointer(
            tmp_path / "save",
            recoverables={"embedding_model": encoder, "classifier": head, "counter": counter},
        ),
        "epoch_counter": counter,
        "train_dataloader_options": {"batch_size": 4, "shuffle": True},
        "valid_dataloader_options": {"batch_size": 6},
        "model_file": str(tmp_path / "model.pt"),
        "test_patch_sizes": [16, "16x32"],
        "patch_sweep_file": str(tmp_path / "patch_sweep"),
        "brain_settings": {
            "n_classes": 3,
            "epoch_counter": counter,
            "test_metrics_file": str(tmp_path / "test_metrics.json"),
        },
    }
    result = run_experiment(
        hparams,
        {"device": device, "noprogressbar": True},
        _separable_dataset(24),
        _separable_dataset(9, 1),
        _separable_dataset(9, 2),
    )
    # it learns: chance is a loss of ln 3 = 1.1 and an accuracy of 1/3
    assert result.brain.train_stats["loss"] < 0.7
    assert result.test_stats["acc"] > 0.5 and result.test_stats["clips"] == 9
    record = json.loads((tmp_path / "test_metrics.json").read_text())
    assert record["acc"] == pytest.approx(result.test_stats["acc"])
    assert [row["patch_size"] for row in result.sweep] == ["16", "16x32"]
    assert result.sweep[0]["acc"] == pytest.approx(result.test_stats["acc"])
    assert (tmp_path / "patch_sweep.csv").exists() and (tmp_path / "patch_sweep.md").exists()
    assert torch.load(tmp_path / "model.pt", weights_only=True)["model"].keys() == {
        *(f"encoder.{k}" for k in encoder.state_dict()),
        *(f"head.{k}" for k in head.state_dict()),
    }
