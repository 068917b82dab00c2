"""Unit tests for fastast_plugin.training.brain: settings, forward, augmentation and distillation hooks.

Trainings of tiny models (``fit`` / ``evaluate``) are in
``tests/integration/test_training.py``.

Authors
 * fastast developers 2026
"""

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F

from fastast_plugin.data.augment import Mixup, SpecAugment
from fastast_plugin.evaluation.metrics import ClipScores
from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.models.flexi import PatchSizeSampler
from fastast_plugin.training.brain import AudioClassifierBrain, BrainSettings, ForwardOutput
from fastast_plugin.training.losses import SingleLabelKDLoss, classification_loss
from fastast_plugin.training.teachers import OnlineTeacher, TeacherOutput


# ---------------------------------------------------------------------------
# Settings: declared once, checked
# ---------------------------------------------------------------------------
def test_a_misspelt_setting_is_an_error_naming_it_and_the_allowed_keys():
    with pytest.raises(ValueError) as error:
        BrainSettings.from_mapping({"n_classes": 3, "feature_augmnt": []})
    message = str(error.value)
    assert "unknown key 'feature_augmnt'" in message
    for field in ("feature_augment", "mixup", "lr_schedule", "teacher", "eval_patch_size"):
        assert field in message.split("allowed keys:")[1]


def test_the_brain_refuses_misspelt_or_missing_settings(tiny_brain):
    with pytest.raises(
        ValueError, match=r"unknown keys 'kd_los', 'lables'; allowed keys: n_classes"
    ):
        tiny_brain("cpu", kd_los=None, lables=3)
    with pytest.raises(ValueError, match=r"needs hparams\['brain_settings'\]"):
        AudioClassifierBrain({}, hparams={"n_classes": 3}, run_opts={"device": "cpu"})
    with pytest.raises(ValueError, match="brain_settings needs n_classes"):
        BrainSettings.from_mapping({"loss": "ce"})


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"loss": "mse"}, "loss must be one of"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in"),
        ({"n_classes": 0}, "n_classes must be >= 1"),
        ({"eval_patch_size": "16-48"}, "eval_patch_size must be"),
        ({"teacher": lambda *args: None}, "teacher but no kd_loss"),
    ],
)
def test_settings_values_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        BrainSettings.from_mapping({"n_classes": 3, **settings})


def test_settings_normalise_feature_augment_and_eval_patch_size():
    aug = SpecAugment(4, 4)
    settings = BrainSettings.from_mapping(
        {"n_classes": 3, "feature_augment": [aug, None], "eval_patch_size": "16x32"}
    )
    assert settings.feature_augment == (aug,) and settings.eval_patch_size == (16, 32)
    assert BrainSettings(3, feature_augment=aug).feature_augment == (aug,)
    assert BrainSettings(3, eval_patch_size="24").eval_patch_size == 24
    assert not BrainSettings(3, kd_loss=SingleLabelKDLoss()).distilling


# ---------------------------------------------------------------------------
# Forward and augmentation
# ---------------------------------------------------------------------------
def test_waveform_mixup_targets_follow_the_mixed_inputs(device, tiny_brain, clip_batch):
    brain = tiny_brain(device, mixup=Mixup(prob=1.0, level="waveform"))
    batch = clip_batch()
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


def test_no_augmentation_outside_training(device, tiny_brain, clip_batch):
    brain = tiny_brain(device, mixup=Mixup(prob=1.0), feature_augment=[SpecAugment(20, 20)])
    batch = clip_batch()
    brain.modules.eval()
    with torch.no_grad():
        a = brain.compute_forward(batch, sb.Stage.VALID)
        b = brain.compute_forward(batch, sb.Stage.TEST)
    assert a.mixup is None
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.targets.argmax(1).cpu(), batch.label_encoded.data.view(-1))


def test_fbank_mixup_and_feature_augment_run_in_training(device, tiny_brain, clip_batch):
    brain = tiny_brain(
        device, mixup=Mixup(prob=1.0, level="fbank"), feature_augment=[SpecAugment(8, 8)]
    )
    torch.manual_seed(0)
    out = brain.compute_forward(clip_batch(), sb.Stage.TRAIN)
    assert out.mixup is not None and bool((out.mixup.lam < 1).all())
    assert torch.allclose(out.targets.sum(1), torch.ones(6, device=device))


def test_task_loss_feeds_the_clip_scores_outside_training(device, tiny_brain, clip_batch):
    brain = tiny_brain(device, loss="bce", label_smoothing=0.1)
    batch = clip_batch()
    out = brain.compute_forward(batch, sb.Stage.VALID)
    brain.stats = ClipScores()
    loss = brain.compute_objectives(out, batch, sb.Stage.VALID)
    expected = classification_loss(out.logits, out.targets, "bce", 0.1)
    torch.testing.assert_close(loss, expected.mean())
    assert brain.stats.summarize()["clips"] == 6


# ---------------------------------------------------------------------------
# Distillation seam
# ---------------------------------------------------------------------------
def test_distillation_seam_uses_teacher_on_clean_wavs_and_mixup(device, tiny_brain, clip_batch):
    seen = {}

    def teacher(wavs, wav_lens, ids):
        seen["wavs"], seen["ids"] = wavs, ids
        return TeacherOutput(torch.zeros(len(ids), 3), torch.ones(len(ids), dtype=torch.bool))

    kd_loss = SingleLabelKDLoss(kd_lambda=0.5, temperature=2.0)
    brain = tiny_brain(device, mixup=Mixup(prob=1.0), teacher=teacher, kd_loss=kd_loss)
    batch = clip_batch()
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.stats = ClipScores()
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    torch.testing.assert_close(seen["wavs"], batch.sig.data.to(device))
    assert seen["ids"] == batch.id
    teacher_logits = torch.zeros(6, 3, device=device)
    expected = kd_loss(out.logits, out.targets, teacher_logits, None, out.mixup.lam, out.mixup.perm)
    torch.testing.assert_close(loss, expected.loss)
    # the parts the loss returned are tallied for the epoch's log
    assert brain.kd_tally.batches == 1 and brain.kd_tally.kd_clips == expected.n_kd == 6
    assert brain.kd_tally.kd_term == pytest.approx(float(expected.kd.detach()))
    assert brain.kd_tally.kd_task == pytest.approx(float(expected.task.detach()))
    # validation keeps the task loss
    valid_loss = brain.compute_objectives(out, batch, sb.Stage.VALID)
    torch.testing.assert_close(valid_loss, classification_loss(out.logits, out.targets).mean())


def test_teacher_without_its_outputs_counts_as_missing(device, tiny_brain, clip_batch):
    def teacher(wavs, wav_lens, ids):
        mask = torch.tensor([i % 2 == 0 for i in range(len(ids))])
        return TeacherOutput(torch.zeros(len(ids), 3), mask)

    brain = tiny_brain(device, teacher=teacher, kd_loss=SingleLabelKDLoss())
    batch = clip_batch()
    brain.compute_objectives(brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN)
    assert brain.kd_tally.kd_missing == 3 and brain.kd_tally.kd_clips == 3
    assert brain._teacher_source() == "function"


def test_kd_configuration_errors_and_kd_loss_without_teacher(
    device, tiny_brain, clip_batch, clip_dataset
):
    loader = {"batch_size": 4}
    with pytest.raises(ValueError, match="teacher but no kd_loss"):
        tiny_brain(device, teacher=OnlineTeacher(torch.nn.Linear(2, 3)))
    # a teacher that shares the student's parameters (listed in modules too)
    encoder = ASTEncoder("tiny224", input_tdim=32, depth=1, fstride=16, tstride=16)
    brain = tiny_brain(device, teacher=encoder, kd_loss=SingleLabelKDLoss())
    brain.modules["embedding_model"] = encoder
    with pytest.raises(ValueError, match="shares .* parameters with `modules`"):
        brain.fit(range(1, 2), clip_dataset(4), train_loader_kwargs=loader)
    # kd_loss without a teacher (flexiast.yaml without teacher_checkpoint): task loss
    brain = tiny_brain(device, kd_loss=SingleLabelKDLoss(kd_lambda=0.1))
    batch = clip_batch()
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    torch.testing.assert_close(loss, classification_loss(out.logits, out.targets).mean())


def test_sampler_needs_a_flexible_encoder(tiny_brain, clip_dataset):
    brain = tiny_brain("cpu", patch_size_sampler=PatchSizeSampler([16, 32]))
    with pytest.raises(ValueError, match="flexible='none'"):
        brain.fit(range(1, 2), clip_dataset(4), train_loader_kwargs={"batch_size": 4})


# ---------------------------------------------------------------------------
# Multi-label (AudioSet): multi-hot targets, mAP, checkpoints by mAP, averaging
# ---------------------------------------------------------------------------
def multi_hot_dataset(n=6, samples=4000):
    generator = torch.Generator().manual_seed(0)
    data = {
        f"clip{i}": {
            "sig": torch.randn(samples, generator=generator),
            "label_encoded": torch.tensor([1.0, float(i % 2), float(i % 3 == 0)]),
        }
        for i in range(n)
    }
    return sb.dataio.dataset.DynamicItemDataset(data, output_keys=["id", "sig", "label_encoded"])


def test_multi_hot_targets_are_used_as_they_are(tiny_brain):
    brain = tiny_brain("cpu", loss="bce")
    data = multi_hot_dataset(3)
    batch = sb.dataio.batch.PaddedBatch([data[i] for i in range(3)])
    out = brain.compute_forward(batch, sb.Stage.VALID)
    assert out.targets.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    wide = sb.dataio.batch.PaddedBatch(
        [{"id": "x", "sig": torch.randn(4000), "label_encoded": torch.ones(4)}]
    )
    with pytest.raises(
        ValueError, match=r"multi-hot label_encoded must be \[batch, 3\], got \(1, 4\)"
    ):
        brain.compute_forward(wide, sb.Stage.VALID)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"loss": "ce", "monitor": "mAP"}, "monitor must be one of \\('acc',\\)"),
        ({"loss": "bce", "monitor": "map"}, "monitor must be one of \\('acc', 'mAP', 'd_prime'\\)"),
        ({"average_last_epochs": -1}, "average_last_epochs must be an integer >= 0"),
    ],
)
def test_multilabel_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        BrainSettings.from_mapping({"n_classes": 3, **settings})
    assert BrainSettings.from_mapping({"n_classes": 3, "loss": "bce"}).multilabel is True
    assert BrainSettings.from_mapping({"n_classes": 3, "loss": "ce"}).multilabel is False


def test_validation_reports_map_and_keeps_the_last_epochs_for_averaging(tiny_brain, tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    from fastast_plugin.evaluation.metrics import multilabel_metrics

    checkpointer = Checkpointer(tmp_path / "save")
    brain = tiny_brain(
        "cpu", checkpointer=checkpointer, loss="bce", monitor="mAP", average_last_epochs=2
    )
    checkpointer.add_recoverables({"embedding_model": brain.modules.embedding_model})
    data = multi_hot_dataset(6)
    brain.fit(
        range(1, 5),
        data,
        data,
        train_loader_kwargs={"batch_size": 3},
        valid_loader_kwargs={"batch_size": 4},
    )
    metas = [c.meta for c in checkpointer.list_checkpoints()]
    recent = sorted(m["epoch"] for m in metas)[-2:]
    assert recent == [3, 4]
    assert all({"mAP", "d_prime", "acc", "epoch"} <= set(m) for m in metas)
    assert len(metas) <= 3  # the last two, and the best by mAP if it is older
    # the last validation's mAP is that of all its clips
    brain.evaluate(data, test_loader_kwargs={"batch_size": 4}, max_key="epoch")
    ids, scores, targets, _ = brain.stats.gather()
    assert brain.test_stats["mAP"] == pytest.approx(multilabel_metrics(scores, targets)["mAP"])


def test_a_teacher_that_reads_the_batch_gets_the_batch(tiny_brain):
    from fastast_plugin.training.losses import MultiLabelKDLoss
    from fastast_plugin.training.teachers import BatchLogits

    kd_loss = MultiLabelKDLoss(kd_lambda=0.3)
    brain = tiny_brain("cpu", loss="bce", teacher=BatchLogits(num_classes=3), kd_loss=kd_loss)
    generator = torch.Generator().manual_seed(0)
    items = [
        {
            "id": f"c{i}",
            "sig": torch.randn(4000, generator=generator),
            "label_encoded": torch.tensor([1.0, 0.0, float(i)]),
            "teacher_logits": torch.randn(3, generator=generator),
            "teacher_mask": torch.tensor([float(i != 1)]),
        }
        for i in range(3)
    ]
    batch = sb.dataio.batch.PaddedBatch(items)
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    expected = kd_loss(
        out.logits,
        out.targets,
        torch.stack([i["teacher_logits"] for i in items]),
        torch.tensor([True, False, True]),
    )
    torch.testing.assert_close(loss, expected.loss)
    assert brain.kd_tally.kd_missing == 1 and brain.kd_tally.kd_clips == 2


# ---------------------------------------------------------------------------
# Lengths: the encoder gets frame lengths, from any front end
# ---------------------------------------------------------------------------
def brain_with(features, **encoder):
    """A 2-block AST Brain on 256 frames (16x16 patches) behind ``features``."""
    from fastast_plugin.models.ast import ASTHead

    torch.manual_seed(0)
    modules = {
        "compute_features": features,
        "embedding_model": ASTEncoder(
            "tiny224", input_tdim=256, depth=2, fstride=16, tstride=16, **encoder
        ),
        "classifier": ASTHead(192, 3),
    }
    brain = AudioClassifierBrain(
        modules, hparams={"brain_settings": {"n_classes": 3}}, run_opts={"device": "cpu"}
    )
    brain.modules.eval()
    return brain


def valid_logits(brain, *clips):
    """``compute_forward`` logits of a SpeechBrain PaddedBatch of ``clips``."""
    batch = sb.dataio.batch.PaddedBatch(
        [
            {"id": f"c{i}", "sig": clip, "label_encoded": torch.tensor([0])}
            for i, clip in enumerate(clips)
        ]
    )
    with torch.no_grad():
        return brain.compute_forward(batch, sb.Stage.VALID).logits


@pytest.mark.parametrize("target_length", [None, 256])
@pytest.mark.parametrize("merge", [{"r": 0}, {"r": 4}, {"keep_ratio": 0.8}])
def test_native_mode_gives_a_clip_the_same_logits_alone_and_in_a_batch(target_length, merge):
    from fastast_plugin.models.features import KaldiFbank

    features = KaldiFbank(target_length=target_length, mean=-6.8, std=5.6)
    brain = brain_with(features, length_mode="native", **merge)
    generator = torch.Generator().manual_seed(0)
    # 95 frames: one frame short of a 6th patch column; waveform lengths
    # read as frame lengths gave it 96 (124 with target_length 256)
    short = torch.randn(15500, generator=generator)
    middle = torch.randn(24000, generator=generator)  # 148 frames
    long = torch.randn(32000, generator=generator)  # 198 frames
    together = valid_logits(brain, long, short, middle)
    for row, clip in enumerate((long, short, middle)):
        alone = valid_logits(brain, clip)[0]
        assert (together[row] - alone).abs().max() <= 1e-4


@pytest.mark.parametrize("front_end", ["KaldiFbank", "speechbrain Fbank"])
@pytest.mark.parametrize("merge", [{"r": 0}, {"r": 4}])
def test_native_mode_pads_a_clip_shorter_than_one_patch_with_silence(front_end, merge):
    """FSDD holds 143 ms words: 12 frames, under one 16-frame patch. The clip runs as
    if recorded with silence up to one patch, alone, in a batch, and in training."""
    from speechbrain.lobes.features import Fbank

    from fastast_plugin.models.features import KaldiFbank

    features = KaldiFbank(mean=-6.8, std=5.6) if front_end == "KaldiFbank" else Fbank(n_mels=128)
    brain = brain_with(features, length_mode="native", **merge)
    min_samples = 2800 if front_end == "KaldiFbank" else 2400  # 16 frames
    generator = torch.Generator().manual_seed(3)
    word, long = torch.randn(2288, generator=generator), torch.randn(24000, generator=generator)
    padded = F.pad(word, (0, min_samples - len(word)))
    expected = valid_logits(brain, padded)[0]
    torch.testing.assert_close(valid_logits(brain, word)[0], expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(valid_logits(brain, long, word)[1], expected, rtol=0, atol=1e-4)
    brain.modules.train()
    batch = sb.dataio.batch.PaddedBatch(
        [
            {"id": str(i), "sig": clip, "label_encoded": torch.tensor([0])}
            for i, clip in enumerate((word, long))
        ]
    )
    loss = brain.compute_objectives(
        brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN
    )
    assert torch.isfinite(loss)


def test_speechbrain_fbank_in_pad_mode_pads_clips_shorter_than_a_patch():
    from speechbrain.lobes.features import Fbank

    fbank = Fbank(n_mels=128)
    brain = brain_with(fbank)
    clips = torch.randn(2, 1600, generator=torch.Generator().manual_seed(1))  # 0.1 s: 11 frames
    logits = valid_logits(brain, *clips)
    feats = fbank(clips)
    assert feats.shape[1] == 11
    with torch.no_grad():
        expected = brain.modules.classifier(
            brain.modules.embedding_model(F.pad(feats, (0, 0, 0, 256 - 11)))
        ).squeeze(1)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_speechbrain_fbank_in_native_mode_gives_each_clip_its_own_frame_count():
    from speechbrain.lobes.features import Fbank

    fbank = Fbank(n_mels=128)  # centred STFT: 1 + samples // hop frames
    brain = brain_with(fbank, length_mode="native")
    generator = torch.Generator().manual_seed(2)
    # alone 111 frames (6 patch columns); its waveform length gave it 112 (7)
    long, short = torch.randn(32000, generator=generator), torch.randn(17759, generator=generator)
    logits = valid_logits(brain, long, short)
    own_frames = fbank(short[None]).shape[1]
    assert own_frames == 111
    with torch.no_grad():
        feats = fbank(torch.stack([long, F.pad(short, (0, 32000 - 17759))]))
        expected = brain.modules.classifier(
            brain.modules.embedding_model(feats[1:, :own_frames])
        ).squeeze(1)
    torch.testing.assert_close(logits[1:], expected, rtol=0, atol=1e-5)


def test_speechbrain_augmenter_as_feature_augment_is_unpacked_and_keeps_the_batch(
    tiny_brain, clip_batch
):
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.freq_domain import SpectrogramDrop

    seen = []

    class Recorded(SpectrogramDrop):
        def forward(self, spectrogram):
            seen.append(spectrogram.shape)
            return super().forward(spectrogram)

    augmenter = Augmenter(augmentations=[Recorded(drop_length_low=1, drop_length_high=4)])
    brain = tiny_brain("cpu", feature_augment=[augmenter])
    out = brain.compute_forward(clip_batch(), sb.Stage.TRAIN)
    assert out.logits.shape == (6, 3) and seen == [(6, 32, 128)]

    doubling = Augmenter(augmentations=[SpectrogramDrop()], concat_original=True)
    brain = tiny_brain("cpu", feature_augment=[doubling])
    with pytest.raises(ValueError, match="turned a batch of 6 clips into 12.*concat_original"):
        brain.compute_forward(clip_batch(), sb.Stage.TRAIN)
