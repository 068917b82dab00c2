"""The one SpeechBrain ``Brain`` every fastast recipe trains with.

One batch: waveforms ``->`` (mixup at waveform level) ``->`` features
(``KaldiFbank``, on the device) ``->`` (mixup at fbank level, SpecAugment,
noise + roll) ``->`` encoder ``->`` head ``->`` logits. Augmentation runs in
training only. The loss is CE or BCE (``fastast_plugin.training.losses``) against
one-hot targets mixed like the inputs, or a distillation loss when a teacher
is set; validation and test accumulate per-clip scores in
``fastast_plugin.evaluation.metrics.ClipScores``, which counts every clip once across
DDP ranks.

What the Brain reads from the hyperparameters is declared once, in
``BrainSettings``: the YAML's ``brain_settings`` block. A key it does not
know is an error naming the key and the allowed ones. SpeechBrain's own run
options (``max_grad_norm``, ``precision``, ...) stay top-level YAML keys, as
in every SpeechBrain recipe.

The Brain holds hooks only; what a recipe does around ``fit`` and
``evaluate`` (the patch-size sweep, cross-validation summaries, exporting
the tested weights) is in ``fastast_plugin.training.recipe`` and
``fastast_plugin.training.crossval``.

Authors
 * fastast developers 2026
"""

import dataclasses
import json
import os
import time
from typing import Any, NamedTuple

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.utils.distributed import ddp_all_reduce
from speechbrain.utils.logger import get_logger
from torch.nn.parallel import DistributedDataParallel

from fastast_plugin.data.augment import MixupInfo
from fastast_plugin.data.sampling import EvalShardSampler, distributed_world
from fastast_plugin.evaluation.metrics import ClipScores
from fastast_plugin.models.features import batch_features, min_clip_samples
from fastast_plugin.models.merge import token_counts
from fastast_plugin.training.losses import LOSSES, classification_loss
from fastast_plugin.weights.resize import parse_patch_size

__all__ = ["AudioClassifierBrain", "BrainSettings", "ForwardOutput", "unwrap"]

logger = get_logger(__name__)

_SETTINGS_KEY = "brain_settings"


@dataclasses.dataclass
class BrainSettings:
    """Everything ``AudioClassifierBrain`` reads from the hyperparameters: the ``brain_settings`` block.

    Build it with ``BrainSettings.from_mapping`` (what the Brain does with
    ``hparams["brain_settings"]``): an unknown key raises ``ValueError``
    naming it and the allowed keys, so a misspelt setting never falls back
    silently to its default.

    Arguments
    ---------
    n_classes : int
        Number of classes (one-hot targets from ``label_encoded``).
    loss : str
        ``"ce"`` or ``"bce"`` (``fastast_plugin.training.losses.classification_loss``).
    label_smoothing : float
        Label smoothing of the task loss.
    mixup : fastast_plugin.data.augment.Mixup, optional
        Mixup in training, at its ``level`` (waveform or fbank).
    feature_augment : module or list of modules, optional
        Called as ``aug(feats, frame_lens)`` (relative frame lengths,
        as ``features.batch_features`` gives them) in training, in order (e.g.
        ``SpecAugment``, ``NoiseRoll``, or SpeechBrain's ``Augmenter``,
        whose ``(feats, lengths)`` result is unpacked; see
        ``_augment_features``); None entries are dropped.
    lr_schedule : callable, optional
        ``(epoch, optimizer_step) -> lr``, e.g.
        ``fastast_plugin.training.schedulers.WarmupStepDecay``, set before every
        step (each parameter group's ``lr_scale``, default 1, multiplies it).
    teacher : callable, optional
        Knowledge distillation: ``teacher(wavs, wav_lens, ids) ->
        TeacherOutput(logits, mask)`` (``fastast_plugin.training.teachers``; a
        teacher with ``reads_batch`` is called as ``teacher(batch)``), run
        under ``no_grad`` on the clean (unmixed) waveforms in training. It
        stays out of ``modules``: never optimised, checkpointed or
        DDP-wrapped; a teacher module is moved to the device, frozen and kept
        in eval mode. Its ``source`` is recorded in the test metrics. Needs
        ``kd_loss``.
    kd_loss : callable, optional
        ``kd_loss(logits, targets, teacher_logits, mask, lam=, perm=) ->
        KDResult`` (``fastast_plugin.training.losses``), with the student's mixup
        weights and partners. Without a teacher (None) training uses the
        task loss (e.g. ``flexiast.yaml`` without a teacher checkpoint).
        Per epoch the train log gets ``kd_task`` and ``kd_term`` (mean
        terms), ``kd_clips`` (clips with a distillation term) and
        ``kd_missing`` (clips the teacher had no output for), summed over
        DDP ranks.
    patch_size_sampler : callable, optional
        FlexiAST training (``fastast_plugin.models.flexi.PatchSizeSampler``): every
        training batch runs at ``patch_size_sampler()``; the encoder must be
        flexible. Added to the checkpointer (if not listed) so that a
        resumed run continues its sequence.
    eval_patch_size : int, str or pair, optional
        Patch size of validation and test (``flexi.parse_patch_size`` forms;
        None: the encoder's base size). Applied when set or when there is a
        ``patch_size_sampler``; otherwise the patch size is left alone.
    epoch_counter : EpochCounter, optional
        Its epoch is recorded with the test metrics.
    train_logger : FileTrainLogger, optional
        Where stage statistics go (else the module logger).
    test_metrics_file : str, optional
        Where the test stage writes its metrics (JSON); None: not written.
    multilabel : bool, optional
        Validation and test also report ``mAP``, ``mAUC`` and ``d_prime``
        (``fastast_plugin.evaluation.metrics.multilabel_metrics``, over the clips of
        all DDP ranks). None (default): when ``loss`` is ``"bce"``.
    monitor : str
        Validation metric whose best checkpoint is kept and tested
        (``"acc"``; ``"mAP"`` for AudioSet, which needs ``multilabel``).
    average_last_epochs : int
        Keep the last N end-of-epoch checkpoints so that
        ``fastast_plugin.training.recipe.run_experiment`` tests the average of their
        weights (AST's weight averaging, ``fastast_plugin.training.averaging``); 0:
        no averaging.

    Example
    -------
    >>> BrainSettings.from_mapping({"n_classes": 3, "loss": "bce"}).loss
    'bce'
    >>> BrainSettings.from_mapping({"n_classes": 3, "los": "bce"})
    Traceback (most recent call last):
    ...
    ValueError: brain_settings has an unknown key 'los'; allowed keys: ...
    """

    n_classes: int
    loss: str = "ce"
    label_smoothing: float = 0.0
    mixup: Any = None
    feature_augment: Any = ()
    lr_schedule: Any = None
    teacher: Any = None
    kd_loss: Any = None
    patch_size_sampler: Any = None
    eval_patch_size: Any = None
    epoch_counter: Any = None
    train_logger: Any = None
    test_metrics_file: str | None = None
    multilabel: bool | None = None
    monitor: str = "acc"
    average_last_epochs: int = 0

    def __post_init__(self):
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ValueError(f"brain_settings n_classes must be an int, got {self.n_classes!r}")
        if self.n_classes < 1:
            raise ValueError(f"brain_settings n_classes must be >= 1, got {self.n_classes}")
        if self.loss not in LOSSES:
            raise ValueError(f"brain_settings loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"brain_settings label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
        if self.teacher is not None and self.kd_loss is None:
            raise ValueError(
                "brain_settings has a teacher but no kd_loss; add e.g. "
                "fastast_plugin.training.losses.SingleLabelKDLoss, or remove the teacher"
            )
        if self.multilabel is None:
            self.multilabel = self.loss == "bce"
        monitors = ("acc", "mAP", "d_prime") if self.multilabel else ("acc",)
        if self.monitor not in monitors:
            raise ValueError(
                f"brain_settings monitor must be one of {monitors} (mAP and d_prime need "
                f"multilabel: True or loss: bce), got {self.monitor!r}"
            )
        average = self.average_last_epochs
        if isinstance(average, bool) or not isinstance(average, int) or average < 0:
            raise ValueError(
                f"brain_settings average_last_epochs must be an integer >= 0, got {average!r}"
            )
        augment = self.feature_augment
        if augment is None:
            augment = ()
        elif not isinstance(augment, (list, tuple)):
            augment = (augment,)
        self.feature_augment = tuple(a for a in augment if a is not None)
        if self.eval_patch_size is not None:
            self.eval_patch_size = parse_patch_size(
                self.eval_patch_size, "eval_patch_size", as_pair=False
            )

    @classmethod
    def from_mapping(cls, mapping, name=_SETTINGS_KEY):
        """Settings from a dict (a YAML block), refusing unknown keys.

        Arguments
        ---------
        mapping : dict or BrainSettings
            Setting name to value (a ``BrainSettings`` is returned as is).
        name : str
            Name of the block, for error messages.

        Returns
        -------
        BrainSettings
            The checked settings.
        """
        if isinstance(mapping, cls):
            return mapping
        if not isinstance(mapping, dict):
            raise ValueError(
                f"{name} must be a mapping of Brain settings, got {type(mapping).__name__}"
            )
        allowed = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            keys = ", ".join(repr(key) for key in unknown)
            plural = "an unknown key" if len(unknown) == 1 else "unknown keys"
            raise ValueError(f"{name} has {plural} {keys}; allowed keys: {', '.join(allowed)}")
        if "n_classes" not in mapping:
            raise ValueError(f"{name} needs n_classes; allowed keys: {', '.join(allowed)}")
        return cls(**mapping)

    @property
    def distilling(self):
        """Whether training uses the distillation loss (teacher and kd_loss set)."""
        return self.teacher is not None and self.kd_loss is not None


class ForwardOutput(NamedTuple):
    """What ``AudioClassifierBrain.compute_forward`` returns.

    Arguments
    ---------
    logits : torch.Tensor
        ``[batch, classes]``.
    targets : torch.Tensor
        ``[batch, classes]`` targets, mixed like the inputs when mixup ran.
    mixup : MixupInfo or None
        Partners and weights of the mixup, None without mixup.
    wavs : torch.Tensor
        ``[batch, samples]`` waveforms before any augmentation (what a
        teacher sees; ``mixup.mix(wavs)`` is the student's input when mixup
        ran at waveform level).
    wav_lens : torch.Tensor
        ``[batch]`` relative lengths.

    Example
    -------
    >>> out = ForwardOutput(
    ...     torch.zeros(2, 3), torch.zeros(2, 3), None, torch.zeros(2, 8), torch.ones(2)
    ... )
    >>> out.logits.shape
    torch.Size([2, 3])
    """

    logits: torch.Tensor
    targets: torch.Tensor
    mixup: MixupInfo | None
    wavs: torch.Tensor
    wav_lens: torch.Tensor


@dataclasses.dataclass
class _KDTally:
    """Per-epoch sums of the distillation loss's parts (this rank).

    Example
    -------
    >>> tally = _KDTally()
    >>> tally.batches, tally.kd_missing
    (0, 0)
    """

    batches: int = 0
    kd_missing: int = 0
    kd_clips: int = 0
    kd_task: float = 0.0
    kd_term: float = 0.0


def unwrap(module):
    """The module inside DDP / DataParallel and ``torch.compile`` wrappers, in any nesting.

    SpeechBrain compiles modules (``--compile``) and then wraps them in DDP,
    so a training module may be ``DDP(OptimizedModule(module))``; saving
    the wrapper would prefix every key (``module.``, ``_orig_mod.``).

    Arguments
    ---------
    module : torch.nn.Module
        A module, wrapped or not.

    Returns
    -------
    torch.nn.Module
        The innermost module (the module itself when it is not wrapped).

    Example
    -------
    >>> layer = torch.nn.Linear(2, 2)
    >>> unwrap(torch.nn.DataParallel(layer)) is layer
    True
    >>> unwrap(torch.nn.DataParallel(torch.compile(layer))) is layer
    True
    """
    while True:
        if isinstance(module, torch.nn.Module) and "_orig_mod" in module._modules:
            module = module._orig_mod  # OptimizedModule (importing it loads dynamo)
        elif isinstance(module, (DistributedDataParallel, torch.nn.DataParallel)):
            module = module.module
        else:
            return module


def _augment_features(augment, feats, feat_lens):
    """Run one feature augmentation; ours return features, SpeechBrain's ``Augmenter`` a pair.

    Arguments
    ---------
    augment : callable
        ``augment(feats, feat_lens)`` returning features, or ``(features,
        lengths)`` as SpeechBrain's ``Augmenter`` does.
    feats : torch.Tensor
        ``[batch, frames, bins]``.
    feat_lens : torch.Tensor
        Relative frame lengths ``[batch]``.

    Returns
    -------
    tuple
        The augmented features and their relative lengths.

    Example
    -------
    >>> from speechbrain.augment.augmenter import Augmenter
    >>> from speechbrain.augment.freq_domain import SpectrogramDrop
    >>> drop = Augmenter(augmentations=[SpectrogramDrop(drop_length_low=1, drop_length_high=2)])
    >>> feats, lens = _augment_features(drop, torch.randn(2, 20, 8), torch.ones(2))
    >>> feats.shape, lens.shape
    (torch.Size([2, 20, 8]), torch.Size([2]))
    """
    out = augment(feats, feat_lens)
    if isinstance(out, (tuple, list)):
        out, feat_lens = out
    if out.shape[0] != feats.shape[0]:
        raise ValueError(
            f"feature_augment {type(augment).__name__} turned a batch of {feats.shape[0]} "
            f"clips into {out.shape[0]} (SpeechBrain's Augmenter with concat_original "
            "or repeat_augment > 1); the Brain keeps one target per clip: set "
            "concat_original: False and repeat_augment: 1"
        )
    return out, feat_lens


class AudioClassifierBrain(sb.Brain):
    """Waveforms to class logits: features, augmentation, encoder, head, loss, metrics.

    Modules expected in ``modules``: ``compute_features`` (e.g.
    ``KaldiFbank``, or SpeechBrain's ``Fbank``), ``embedding_model`` (e.g.
    ``ASTEncoder``, given relative *frame* lengths from
    ``fastast_plugin.models.features.batch_features``) and
    ``classifier`` (e.g. ``ASTHead``). Batches provide ``id``, ``sig``
    (padded waveforms) and ``label_encoded`` (class indices). The settings
    are ``hparams["brain_settings"]`` (see ``BrainSettings``). After
    ``evaluate`` the test metrics are in ``self.test_stats`` and in the
    ``test_metrics_file``.

    Arguments
    ---------
    modules : dict
        The modules above.
    opt_class : callable, optional
        As ``sb.Brain``.
    hparams : dict
        With a ``brain_settings`` mapping (and anything else the recipe
        uses; SpeechBrain's run options may be top-level keys).
    run_opts : dict or RunOptions, optional
        As ``sb.Brain``.
    checkpointer : Checkpointer, optional
        As ``sb.Brain``.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder, ASTHead
    >>> from fastast_plugin.models.features import KaldiFbank
    >>> modules = {
    ...     "compute_features": KaldiFbank(target_length=128),
    ...     "embedding_model": ASTEncoder("tiny224", input_tdim=128, depth=1),
    ...     "classifier": ASTHead(192, 3),
    ... }
    >>> brain = AudioClassifierBrain(
    ...     modules, hparams={"brain_settings": {"n_classes": 3}}, run_opts={"device": "cpu"}
    ... )
    >>> batch = sb.dataio.batch.PaddedBatch([
    ...     {"id": "a", "sig": torch.randn(16000), "label_encoded": torch.tensor([2])},
    ...     {"id": "b", "sig": torch.randn(8000), "label_encoded": torch.tensor([0])},
    ... ])
    >>> out = brain.compute_forward(batch, sb.Stage.VALID)
    >>> out.logits.shape, out.targets.tolist()
    (torch.Size([2, 3]), [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    """

    def __init__(
        self, modules=None, opt_class=None, hparams=None, run_opts=None, checkpointer=None
    ):
        if not hparams or _SETTINGS_KEY not in hparams:
            raise ValueError(
                f"AudioClassifierBrain needs hparams[{_SETTINGS_KEY!r}], a mapping of "
                "the settings fastast_plugin.training.brain.BrainSettings documents "
                "(at least n_classes)"
            )
        self.settings = BrainSettings.from_mapping(hparams[_SETTINGS_KEY])
        self.kd_tally = _KDTally()
        self.epoch = None
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)

    # ------------------------------------------------------------------
    # Forward and loss
    # ------------------------------------------------------------------
    def compute_forward(self, batch, stage):
        """Logits and (mixed) targets for a batch of waveforms.

        Arguments
        ---------
        batch : PaddedBatch
            With ``sig`` and ``label_encoded``.
        stage : sb.Stage
            Augmentation runs only in ``TRAIN``.

        Returns
        -------
        ForwardOutput
            Logits, targets, mixup information and the input waveforms.
        """
        batch = batch.to(self.device)
        clean_wavs, wav_lens = batch.sig
        wavs = clean_wavs
        targets = self.targets(batch)
        training = stage == sb.Stage.TRAIN
        mixup = self.settings.mixup if training else None
        if mixup is not None and not mixup.enabled:
            mixup = None
        info = None
        if mixup is not None and mixup.level == "waveform":
            wavs, info = mixup(wavs)
        # The encoder's lengths count frames, not samples (native length mode);
        # a clip shorter than the model takes is padded with silence.
        features = self.modules.compute_features
        min_samples = min_clip_samples(unwrap(features), unwrap(self.modules.embedding_model))
        feats, feat_lens = batch_features(features, wavs, wav_lens, min_samples)
        if mixup is not None and mixup.level == "fbank":
            feats, info = mixup(feats)
        if training:
            for augment in self.settings.feature_augment:
                feats, feat_lens = _augment_features(augment, feats, feat_lens)
        emb = self.modules.embedding_model(feats, feat_lens)
        logits = self.modules.classifier(emb)
        if logits.dim() == 3:
            logits = logits.squeeze(1)
        if info is not None:
            targets = info.mix(targets)
        return ForwardOutput(logits, targets, info, clean_wavs, wav_lens)

    def targets(self, batch):
        """Targets ``[batch, classes]`` from ``label_encoded``.

        Arguments
        ---------
        batch : PaddedBatch
            With ``label_encoded``: integer class indices (``[batch]`` or
            ``[batch, 1]``), made one-hot, or float multi-hot vectors
            ``[batch, classes]`` (AudioSet), used as they are.

        Returns
        -------
        torch.Tensor
            Float targets on the Brain's device.
        """
        labels = batch.label_encoded
        labels = getattr(labels, "data", labels).to(self.device)
        if labels.is_floating_point():
            if labels.dim() != 2 or labels.shape[1] != self.settings.n_classes:
                raise ValueError(
                    f"multi-hot label_encoded must be [batch, {self.settings.n_classes}], "
                    f"got {tuple(labels.shape)}"
                )
            return labels.float()
        return F.one_hot(labels.view(-1), self.settings.n_classes).float()

    def compute_objectives(self, predictions, batch, stage):
        """Task loss (distillation loss in training when configured); feeds the metrics.

        Arguments
        ---------
        predictions : ForwardOutput
            From ``compute_forward``.
        batch : PaddedBatch
            The batch.
        stage : sb.Stage
            The stage.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        if stage == sb.Stage.TRAIN and self.settings.distilling:
            return self.distillation_loss(predictions, batch)
        losses = classification_loss(
            predictions.logits,
            predictions.targets,
            self.settings.loss,
            self.settings.label_smoothing,
        )
        if stage != sb.Stage.TRAIN:
            self.stats.append(batch.id, predictions.logits, predictions.targets, losses)
        return losses.mean()

    def distillation_loss(self, predictions, batch):
        """Task + distillation loss from the settings' ``teacher`` and ``kd_loss``; tallies its parts.

        Arguments
        ---------
        predictions : ForwardOutput
            From ``compute_forward``; the teacher sees ``predictions.wavs``
            (unmixed) and its outputs are mixed like the student's input
            inside ``kd_loss``.
        batch : PaddedBatch
            The batch (its ``id`` keys precomputed teacher logits).

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        teacher = self.settings.teacher
        with torch.no_grad():
            if getattr(teacher, "reads_batch", False):  # logits carried by the batch
                teacher_logits, mask = teacher(batch)
            else:
                teacher_logits, mask = teacher(predictions.wavs, predictions.wav_lens, batch.id)
        device = predictions.logits.device
        mask = torch.as_tensor(mask, device=device, dtype=torch.bool)
        mixup = predictions.mixup
        result = self.settings.kd_loss(
            predictions.logits,
            predictions.targets,
            teacher_logits.to(device),
            mask,
            lam=None if mixup is None else mixup.lam,
            perm=None if mixup is None else mixup.perm,
        )
        tally = self.kd_tally
        tally.batches += 1
        tally.kd_missing += int((~mask).sum())
        tally.kd_clips += int(result.n_kd)
        tally.kd_task += float(result.task.detach())
        tally.kd_term += float(result.kd.detach())
        return result.loss

    # ------------------------------------------------------------------
    # Per-batch hooks
    # ------------------------------------------------------------------
    def on_fit_batch_start(self, batch, should_step):
        """Learning rate from ``lr_schedule``; patch size from ``patch_size_sampler``.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.
        should_step : bool
            Whether this batch ends with an optimizer step.
        """
        if self.settings.lr_schedule is not None:
            lr = self.settings.lr_schedule(self.epoch, self.optimizer_step)
            for optimizer in self._optimizers():
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
        if self.settings.patch_size_sampler is not None:
            self._encoder().set_patch_size(self.settings.patch_size_sampler())

    def evaluate_batch(self, batch, stage):
        """Evaluate a batch, timing it for the test stage's throughput.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.
        stage : sb.Stage
            ``VALID`` or ``TEST``.

        Returns
        -------
        torch.Tensor
            The detached loss (on the CPU, which also synchronises the
            device, so the timing covers the computation).
        """
        start = time.perf_counter()
        loss = super().evaluate_batch(batch, stage)
        self._forward_seconds += time.perf_counter() - start
        return loss

    def on_fit_start(self):
        """Checks, the sampler made recoverable, SpeechBrain's setup, then the teacher."""
        sampler = self.settings.patch_size_sampler
        if sampler is not None and getattr(self._encoder(), "flexible", "none") == "none":
            raise ValueError(
                "brain_settings has a patch_size_sampler, but the embedding_model has "
                "flexible='none'; build it with flexible='both' (or 'time' / 'freq')"
            )
        if sampler is not None and self.checkpointer is not None:
            known = self.checkpointer.recoverables.values()
            if not any(obj is sampler for obj in known):
                self.checkpointer.add_recoverable("patch_size_sampler", sampler)
        super().on_fit_start()
        self._setup_teacher()

    def _setup_teacher(self):
        """Teacher on the device, frozen, in eval mode, sharing nothing with ``modules``."""
        teacher = self.settings.teacher
        if teacher is None:
            if self.settings.kd_loss is not None:
                logger.info("kd_loss is set but teacher is None: no distillation")
            return
        if not isinstance(teacher, torch.nn.Module):
            return
        student = {id(p) for p in self.modules.parameters()}
        shared = sum(id(p) in student for p in teacher.parameters())
        if shared:
            raise ValueError(
                f"the teacher shares {shared} parameters with `modules`; keep the "
                "teacher out of `modules` (it must not be optimised, checkpointed "
                "or DDP-wrapped) and pass it as the `teacher` Brain setting"
            )
        teacher.to(self.device)
        teacher.requires_grad_(False)
        teacher.eval()

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        """SpeechBrain's loaders, with validation and test sharded across DDP ranks.

        SpeechBrain gives every rank the whole validation / test set. Here
        each rank gets a disjoint slice (``EvalShardSampler``) and
        ``ClipScores`` gathers the slices, so evaluation is not repeated on
        every rank and every clip counts once. A ``sampler`` or
        ``batch_sampler`` in ``loader_kwargs`` is left alone.

        Arguments
        ---------
        dataset : Dataset
            The data.
        stage : sb.Stage
            The stage.
        ckpt_prefix : str or None
            As in ``sb.Brain.make_dataloader``.
        **loader_kwargs : dict
            DataLoader arguments.

        Returns
        -------
        DataLoader
            The loader.
        """
        rank, world_size = distributed_world()
        sharded = (
            stage != sb.Stage.TRAIN
            and world_size > 1
            and "sampler" not in loader_kwargs
            and "batch_sampler" not in loader_kwargs
        )
        if sharded:
            loader_kwargs = dict(loader_kwargs)
            loader_kwargs.pop("shuffle", None)
            loader_kwargs["sampler"] = EvalShardSampler(len(dataset), rank, world_size)
        return super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)

    # ------------------------------------------------------------------
    # Stage hooks
    # ------------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Fresh metric trackers and clocks.

        Arguments
        ---------
        stage : sb.Stage
            The stage.
        epoch : int, optional
            The epoch (None at test).
        """
        if stage == sb.Stage.TRAIN:
            self.epoch = epoch
            logger.info("Epoch %s: training", epoch)
            self.kd_tally = _KDTally()
            if isinstance(self.settings.teacher, torch.nn.Module):
                self.settings.teacher.eval()
        elif (
            self.settings.eval_patch_size is not None
            or self.settings.patch_size_sampler is not None
        ):
            self._encoder().set_patch_size(self.settings.eval_patch_size)
        self.stats = ClipScores()
        self._forward_seconds = 0.0
        self._stage_start = time.perf_counter()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Summarise, log, checkpoint (validation) or write test metrics (test).

        Arguments
        ---------
        stage : sb.Stage
            The stage.
        stage_loss : float
            Mean batch loss on this rank (training: averaged over ranks here).
        epoch : int, optional
            The epoch.
        """
        if stage == sb.Stage.TRAIN:
            _, world_size = distributed_world()
            self.train_stats = {"loss": self._reduce(stage_loss, "sum") / world_size}
            if self.settings.distilling:
                self.train_stats.update(self._distillation_stats())
            return
        stats = self.stats.summarize(multilabel=self.settings.multilabel)
        if stage == sb.Stage.VALID:
            self._log({"epoch": epoch, "lr": self._current_lr()}, self.train_stats, stats)
            if self.checkpointer is not None:
                self._save_checkpoint(stats, epoch)
            return
        wall = time.perf_counter() - self._stage_start
        forward = max(self._reduce(self._forward_seconds, "max"), 1e-9)
        stats["clips_per_s"] = stats["clips"] / forward
        stats["stage_clips_per_s"] = stats["clips"] / max(self._reduce(wall, "max"), 1e-9)
        counter = self.settings.epoch_counter
        meta = {"Epoch loaded": counter.current} if counter is not None else {}
        encoder = self._encoder()
        meta["r"] = getattr(encoder, "r", None)
        if getattr(encoder, "flexible", "none") != "none":
            meta["patch_size"] = "x".join(map(str, encoder.patch_size))
        self._log(meta, None, stats)
        self.test_stats = {**stats, "rank_clips": self.stats.rank_clips}
        self._write_test_metrics(self.test_stats, meta.get("Epoch loaded"))

    def _save_checkpoint(self, stats, epoch):
        """Keep the best checkpoint by ``monitor``, and the last N with weight averaging."""
        monitor = self.settings.monitor
        if stats.get(monitor) is None:
            raise ValueError(
                f"validation gave no {monitor!r} (monitor) to choose checkpoints by: {stats}"
            )
        meta = {key: stats[key] for key in ("acc", "mAP", "d_prime") if stats.get(key) is not None}
        meta["epoch"] = epoch
        keep = self.settings.average_last_epochs
        self.checkpointer.save_and_keep_only(
            meta=meta,
            max_keys=[monitor],
            importance_keys=[lambda ckpt: ckpt.meta.get("epoch", 0)] if keep else [],
            num_to_keep=max(1, keep),
        )

    def _distillation_stats(self):
        """Per-epoch means of the KD terms and counts of clips, over all ranks."""
        tally = self.kd_tally
        batches = max(self._reduce(tally.batches, "sum"), 1)
        return {
            "kd_task": self._reduce(tally.kd_task, "sum") / batches,
            "kd_term": self._reduce(tally.kd_term, "sum") / batches,
            "kd_clips": round(self._reduce(tally.kd_clips, "sum")),
            "kd_missing": round(self._reduce(tally.kd_missing, "sum")),
        }

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def _encoder(self):
        return unwrap(self.modules.embedding_model)

    def _optimizers(self):
        if self.optimizers_dict:
            return list(self.optimizers_dict.values())
        optimizer = getattr(self, "optimizer", None)
        return [optimizer] if optimizer is not None else []

    def _current_lr(self):
        optimizers = self._optimizers()
        return optimizers[0].param_groups[0]["lr"] if optimizers else None

    def _reduce(self, value, op):
        """``value`` summed (``"sum"``) or maximised (``"max"``) over DDP ranks."""
        ops = {"sum": torch.distributed.ReduceOp.SUM, "max": torch.distributed.ReduceOp.MAX}
        tensor = torch.tensor(float(value), device=self.device)
        return ddp_all_reduce(tensor, ops[op]).item()

    def _teacher_source(self):
        """The teacher's ``source`` field (teachers.py sources have one), else its type."""
        teacher = self.settings.teacher
        source = getattr(teacher, "source", None)
        return type(teacher).__name__ if source is None else str(source)

    def _log(self, meta, train_stats, stats):
        """Send stats to the train logger if the recipe has one."""
        train_logger = self.settings.train_logger
        if train_logger is None:
            logger.info("%s train=%s stats=%s", meta, train_stats, stats)
        elif train_stats is None:
            train_logger.log_stats(meta, test_stats=stats)
        else:
            train_logger.log_stats(meta, train_stats=train_stats, valid_stats=stats)

    def _write_test_metrics(self, stats, epoch):
        """Machine-readable results: metrics, merging, patch size, throughput."""
        path = self.settings.test_metrics_file
        if path is None or not sb.utils.distributed.if_main_process():
            return
        encoder = self._encoder()
        record = dict(stats)
        record["epoch"] = epoch
        record["r"] = getattr(encoder, "r", None)
        record["keep_ratio"] = getattr(encoder, "keep_ratio", None)
        record["patch_size"] = getattr(encoder, "patch_size", None)
        record["patch_stride"] = getattr(encoder, "patch_stride", None)
        sampler = self.settings.patch_size_sampler
        if sampler is not None:
            record["train_patch_sizes"] = list(sampler.sizes)
        if self.settings.distilling:
            record["teacher"] = self._teacher_source()
        if hasattr(encoder, "merge_schedule"):
            counts = token_counts(
                encoder.num_tokens, encoder.merge_schedule(), encoder.num_prefix_tokens
            )
            record["tokens_in"] = encoder.num_tokens
            record["tokens_out"] = counts[-1] if counts else encoder.num_tokens
        record["device"] = str(self.device)
        record["precision"] = self.eval_precision
        record["world_size"] = distributed_world()[1]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(record, f, indent=2, default=str)
        logger.info("Test metrics written to %s", path)
