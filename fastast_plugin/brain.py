"""The one SpeechBrain ``Brain`` every fastast recipe trains with.

One batch: waveforms ``->`` (mixup at waveform level) ``->`` features
(``KaldiFbank``, on the device) ``->`` (mixup at fbank level, SpecAugment,
noise + roll) ``->`` encoder ``->`` head ``->`` logits. Augmentation runs in
training only. The loss is CE or BCE against one-hot targets mixed like the
inputs; validation and test accumulate per-clip scores in
``ClassificationStats``, which counts every clip once across DDP ranks.

Hyperparameters read (``self.hparams``):

* ``n_classes`` (required);
* ``loss``: ``"ce"`` (default) or ``"bce"``; ``label_smoothing`` (default 0);
* ``mixup``: a ``fastast_plugin.augment.Mixup`` (optional);
* ``feature_augment``: a module or a list of modules called as
  ``aug(feats, lengths)`` in training (optional, e.g. ``SpecAugment``,
  ``NoiseRoll``);
* ``lr_schedule``: a callable ``(epoch, optimizer_step) -> lr``, e.g.
  ``fastast_plugin.schedulers.WarmupStepDecay``, applied before every step
  (optional; each parameter group's ``lr_scale``, default 1, multiplies it);
* ``teacher`` and ``kd_loss`` (optional, knowledge distillation, see
  ``fastast_plugin.distill``): in training, ``teacher(wavs, wav_lens,
  ids) -> (logits, mask)`` runs under ``no_grad`` on the clean (unmixed)
  waveforms and the loss becomes ``kd_loss(logits, targets,
  teacher_logits, mask, lam=..., perm=...)`` with the student's mixup
  weights and partners; validation and test use the task loss. Distillation
  runs when both are set; a ``kd_loss`` without teacher (None) trains with
  the task loss (e.g. ``flexiast.yaml`` without a teacher checkpoint), a
  teacher without ``kd_loss`` is an error. The teacher stays out of
  ``modules`` (a teacher sharing parameters with them is refused): it is
  never optimised, checkpointed or DDP-wrapped; a teacher module is moved
  to the Brain's device, frozen (``requires_grad_(False)``) and kept in eval
  mode. Per epoch the train log gets ``kd_task`` and ``kd_term`` (mean
  task and distillation terms, from ``kd_loss.last_stats``), ``kd_clips``
  (clips with a distillation term) and ``kd_missing`` (clips the teacher
  had no output for, e.g. ids missing from a logits store), summed over
  DDP ranks;
* ``patch_size_sampler`` (optional, FlexiAST training, e.g.
  ``fastast_plugin.flexi.PatchSizeSampler``): every training batch runs at
  ``patch_size_sampler()`` (set on the encoder in ``on_fit_batch_start``;
  the encoder must be flexible). The sampler is added to the checkpointer's
  recoverables (if the YAML has not listed it) so that a resumed run
  continues its sequence;
* ``eval_patch_size`` (optional): the patch size of validation and test
  (None: the encoder's base size). Applied when it is set or when there is
  a ``patch_size_sampler``; otherwise the encoder's patch size is left
  alone;
* ``model_file`` (optional): after the test stage the tested weights are
  written there as one ``ASTClassifier`` state dict (``encoder.*``,
  ``head.*``), which ``from_pretrained``, ``ASTEncoder(init_from=...)`` and
  ``fastast_plugin.distill.build_ast_teacher`` read;
* ``train_logger``, ``epoch_counter`` and ``test_metrics_file`` (default
  ``<output_folder>/test_metrics.json``) (optional).

``evaluate_patch_sizes`` sweeps the test set over patch sizes after the
normal test and writes a table (CSV, Markdown) and a plot.

Authors
 * fastast developers 2026
"""

import dataclasses
import json
import os
import time
from typing import NamedTuple, Optional

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.utils.logger import get_logger
from speechbrain.utils.run_opts import RunOptions

from fastast_plugin import flexi_eval
from fastast_plugin.ast import ASTClassifier
from fastast_plugin.augment import MixupInfo
from fastast_plugin.dataio import EvalShardSampler
from fastast_plugin.flexi import to_pair
from fastast_plugin.merge import token_counts
from fastast_plugin.metrics import ClassificationStats

logger = get_logger(__name__)

LOSSES = ("ce", "bce")
EVAL_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
        return F.cross_entropy(
            logits, targets, label_smoothing=label_smoothing, reduction="none"
        )
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / targets.shape[-1]
    return F.binary_cross_entropy_with_logits(
        logits, targets, reduction="none"
    ).mean(-1)


def parse_arguments(argv):
    """``speechbrain.parse_arguments`` that keeps short YAML keys such as ``--r`` for the YAML.

    SpeechBrain's argument parser accepts abbreviations of its run options,
    so ``--r=8`` would be read as ``--remove_vector_weight_decay`` (and
    fail), and an abbreviated run option is silently ignored by the Brain
    anyway. Here any ``--name`` that is not exactly a run option but
    abbreviates one is passed to the YAML as an override; a name the YAML
    lacks then raises there.

    Arguments
    ---------
    argv : list of str
        Command-line arguments (without the program name).

    Returns
    -------
    hparams_file : str
        The YAML file.
    run_opts : RunOptions
        SpeechBrain's run options.
    overrides : str
        YAML overrides.

    Example
    -------
    >>> hparams_file, run_opts, overrides = parse_arguments(
    ...     ["x.yaml", "--r=8", "--de", "1", "--device=cpu", "--lr", "0.1"]
    ... )
    >>> overrides.splitlines(), run_opts.device
    (['lr: 0.1', 'r: 8', 'de: 1'], 'cpu')
    """
    options = {f"--{field.name}" for field in dataclasses.fields(RunOptions)}
    kept, extra = [], []
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, has_value, value = arg.partition("=")
        abbreviation = (
            name.startswith("--")
            and name not in options
            and any(option.startswith(name) for option in options)
        )
        if not abbreviation:
            kept.append(arg)
        elif has_value:
            extra.append(f"{name[2:]}: {value}")
        elif i + 1 < len(argv):
            extra.append(f"{name[2:]}: {argv[i + 1]}")
            i += 1
        else:
            raise ValueError(f"Command-line argument {name} needs a value")
        i += 1
    hparams_file, run_opts, overrides = sb.parse_arguments(kept)
    overrides = "\n".join(part for part in (overrides, *extra) if part)
    return hparams_file, run_opts, overrides


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
    mixup: Optional[MixupInfo]
    wavs: torch.Tensor
    wav_lens: torch.Tensor


def _unwrap(module):
    """The module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


def patch_size_value(value):
    """A patch size from YAML or the command line, as ``set_patch_size`` takes it.

    Arguments
    ---------
    value : int, str, list, tuple or None
        ``16``, ``"16"``, ``"16x24"`` (frequency x time), ``[16, 24]`` or
        None (the base size).

    Returns
    -------
    int, tuple of int or None
        The patch size.

    Example
    -------
    >>> patch_size_value("16x24"), patch_size_value([16, 24]), patch_size_value(12)
    ((16, 24), (16, 24), 12)
    """
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) in (1, 2) and all(part.strip().isdigit() for part in parts):
            numbers = [int(part) for part in parts]
            return numbers[0] if len(numbers) == 1 else to_pair(numbers)
        raise ValueError(
            f"patch size must be an int, FREQxTIME (e.g. 16x24) or [freq, time], "
            f"got {value!r}"
        )
    return to_pair(value)


class AudioClassifierBrain(sb.Brain):
    """Waveforms to class logits: features, augmentation, encoder, head, loss, metrics.

    Modules expected in ``modules``: ``compute_features`` (e.g.
    ``KaldiFbank``), ``embedding_model`` (e.g. ``ASTEncoder``) and
    ``classifier`` (e.g. ``ASTHead``). Batches provide ``id``, ``sig``
    (padded waveforms) and ``label_encoded`` (class indices). See the module
    docstring for the hyperparameters. After ``evaluate`` the test metrics
    are in ``self.test_stats`` and in ``test_metrics.json``.

    Example
    -------
    >>> from fastast_plugin.ast import ASTEncoder, ASTHead
    >>> from fastast_plugin.features import KaldiFbank
    >>> modules = {
    ...     "compute_features": KaldiFbank(target_length=128),
    ...     "embedding_model": ASTEncoder("tiny224", input_tdim=128, depth=1),
    ...     "classifier": ASTHead(192, 3),
    ... }
    >>> brain = AudioClassifierBrain(
    ...     modules, hparams={"n_classes": 3}, run_opts={"device": "cpu"}
    ... )
    >>> batch = sb.dataio.batch.PaddedBatch([
    ...     {"id": "a", "sig": torch.randn(16000), "label_encoded": torch.tensor([2])},
    ...     {"id": "b", "sig": torch.randn(8000), "label_encoded": torch.tensor([0])},
    ... ])
    >>> out = brain.compute_forward(batch, sb.Stage.VALID)
    >>> out.logits.shape, out.targets.tolist()
    (torch.Size([2, 3]), [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    """

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
        mixup = self._hparam("mixup") if training else None
        if mixup is not None and not mixup.enabled:
            mixup = None
        info = None
        if mixup is not None and mixup.level == "waveform":
            wavs, info = mixup(wavs)
        feats = self.modules.compute_features(wavs, wav_lens)
        if mixup is not None and mixup.level == "fbank":
            feats, info = mixup(feats)
        if training:
            for augment in self._feature_augmentations():
                feats = augment(feats, wav_lens)
        emb = self.modules.embedding_model(feats, wav_lens)
        logits = self.modules.classifier(emb)
        if logits.dim() == 3:
            logits = logits.squeeze(1)
        if info is not None:
            targets = info.mix(targets)
        return ForwardOutput(logits, targets, info, clean_wavs, wav_lens)

    def targets(self, batch):
        """One-hot targets ``[batch, classes]`` from ``label_encoded``.

        Arguments
        ---------
        batch : PaddedBatch
            With ``label_encoded`` (class indices, ``[batch]`` or
            ``[batch, 1]``).

        Returns
        -------
        torch.Tensor
            Float one-hot targets on the Brain's device.
        """
        labels = batch.label_encoded
        labels = getattr(labels, "data", labels).to(self.device).view(-1)
        return F.one_hot(labels, self.hparams.n_classes).float()

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
        losses = classification_loss(
            predictions.logits,
            predictions.targets,
            self._hparam("loss", "ce"),
            self._hparam("label_smoothing", 0.0),
        )
        loss = losses.mean()
        if stage != sb.Stage.TRAIN:
            self.stats.append(batch.id, predictions.logits, predictions.targets, losses)
        if stage == sb.Stage.TRAIN and self._distilling():
            loss = self.distillation_loss(predictions, batch)
        return loss

    def distillation_loss(self, predictions, batch):
        """Task + distillation loss from ``hparams.teacher`` and ``hparams.kd_loss``.

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
        teacher = self._hparam("teacher")
        if teacher is None:
            raise ValueError(
                "hparams has a `kd_loss` but no `teacher` (an OnlineTeacher or a "
                "LogitsStore from fastast_plugin.distill)"
            )
        with torch.no_grad():
            teacher_logits, mask = teacher(predictions.wavs, predictions.wav_lens, batch.id)
        device = predictions.logits.device
        mask = torch.as_tensor(mask, device=device, dtype=torch.bool)
        mixup = predictions.mixup
        loss = self.hparams.kd_loss(
            predictions.logits,
            predictions.targets,
            teacher_logits.to(device),
            mask,
            lam=None if mixup is None else mixup.lam,
            perm=None if mixup is None else mixup.perm,
        )
        self._tally_distillation(mask, getattr(self.hparams.kd_loss, "last_stats", None))
        return loss

    def _distilling(self):
        return self._hparam("kd_loss") is not None and self._hparam("teacher") is not None

    def _tally_distillation(self, mask, last_stats):
        """Per-epoch counts and mean terms of the distillation loss."""
        tally = self.__dict__.setdefault("_kd_tally", _new_kd_tally())
        tally["batches"] += 1
        tally["kd_missing"] += int((~mask).sum())
        if last_stats is not None:
            tally["kd_clips"] += int(last_stats.n_kd)
            tally["kd_task"] += float(last_stats.task)
            tally["kd_term"] += float(last_stats.kd)

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
        schedule = self._hparam("lr_schedule")
        if schedule is not None:
            self._set_lr(schedule(self._epoch, self.optimizer_step))
        sampler = self._hparam("patch_size_sampler")
        if sampler is not None:
            self._encoder().set_patch_size(patch_size_value(sampler()))

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
        self._check_patch_policy()
        sampler = self._hparam("patch_size_sampler")
        if sampler is not None and self.checkpointer is not None:
            known = self.checkpointer.recoverables.values()
            if not any(obj is sampler for obj in known):
                self.checkpointer.add_recoverable("patch_size_sampler", sampler)
        super().on_fit_start()
        self._setup_teacher()

    def _check_patch_policy(self):
        sampler = self._hparam("patch_size_sampler")
        flexible = getattr(self._encoder(), "flexible", "none")
        if sampler is not None and flexible == "none":
            raise ValueError(
                "hparams has a patch_size_sampler, but the embedding_model has "
                "flexible='none'; build it with flexible='both' (or 'time' / 'freq')"
            )

    def _setup_teacher(self):
        """Teacher on the device, frozen, in eval mode, sharing nothing with ``modules``."""
        teacher, kd_loss = self._hparam("teacher"), self._hparam("kd_loss")
        if teacher is None:
            if kd_loss is not None:
                logger.info("kd_loss is set but teacher is None: no distillation")
            return
        if kd_loss is None:
            raise ValueError(
                "hparams has a teacher but no kd_loss; add e.g. "
                "fastast_plugin.distill.SingleLabelKDLoss, or remove the teacher"
            )
        if not isinstance(teacher, torch.nn.Module):
            return
        student = {id(p) for p in self.modules.parameters()}
        shared = sum(id(p) in student for p in teacher.parameters())
        if shared:
            raise ValueError(
                f"the teacher shares {shared} parameters with `modules`; keep the "
                "teacher out of `modules` (it must not be optimised, checkpointed "
                "or DDP-wrapped) and pass it as the `teacher` hyperparameter"
            )
        teacher.to(self.device)
        teacher.requires_grad_(False)
        teacher.eval()

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        """SpeechBrain's loaders, with validation and test sharded across DDP ranks.

        SpeechBrain gives every rank the whole validation / test set. Here
        each rank gets a disjoint slice (``EvalShardSampler``) and
        ``ClassificationStats`` gathers the slices, so evaluation is not
        repeated on every rank and every clip counts once. A ``sampler`` or
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
        sharded = (
            stage != sb.Stage.TRAIN
            and self.distributed_launch
            and torch.distributed.is_initialized()
            and "sampler" not in loader_kwargs
            and "batch_sampler" not in loader_kwargs
        )
        if sharded:
            loader_kwargs = dict(loader_kwargs)
            loader_kwargs.pop("shuffle", None)
            loader_kwargs["sampler"] = EvalShardSampler(
                len(dataset),
                torch.distributed.get_rank(),
                torch.distributed.get_world_size(),
            )
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
            self._epoch = epoch
            logger.info("Epoch %s: training", epoch)
            self._kd_tally = _new_kd_tally()
            teacher = self._hparam("teacher")
            if isinstance(teacher, torch.nn.Module):
                teacher.eval()
        else:
            self._apply_eval_patch_size()
        self.stats = ClassificationStats()
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
            self.train_stats = {"loss": self._mean_over_ranks(stage_loss)}
            if self._distilling():
                self.train_stats.update(self._distillation_stats())
            return
        stats = self.stats.summarize()
        if stage == sb.Stage.VALID:
            self._end_of_validation(stats, epoch)
            return
        stats_rank_clips = self.stats.rank_clips
        wall = time.perf_counter() - self._stage_start
        forward = max(self._max_over_ranks(self._forward_seconds), 1e-9)
        stats["clips_per_s"] = stats["clips"] / forward
        stats["stage_clips_per_s"] = stats["clips"] / max(self._max_over_ranks(wall), 1e-9)
        counter = self._hparam("epoch_counter")
        meta = {"Epoch loaded": counter.current} if counter is not None else {}
        encoder = self._encoder()
        meta["r"] = getattr(encoder, "r", None)
        if getattr(encoder, "flexible", "none") != "none":
            meta["patch_size"] = "x".join(map(str, encoder.patch_size))
        self._log(meta, None, stats)
        self.test_stats = {**stats, "rank_clips": stats_rank_clips}
        self._write_test_metrics(self.test_stats, meta.get("Epoch loaded"))
        self._export_model()

    def _end_of_validation(self, stats, epoch):
        """Log and keep the best checkpoint (highest accuracy) plus the latest."""
        meta = {"epoch": epoch, "lr": self._current_lr()}
        self._log(meta, self.train_stats, stats)
        if self.checkpointer is not None:
            self.checkpointer.save_and_keep_only(
                meta={"acc": stats["acc"], "epoch": epoch}, max_keys=["acc"]
            )

    def _apply_eval_patch_size(self):
        """Validation / test at ``eval_patch_size`` (None: base) when a policy is set."""
        size = self._hparam("eval_patch_size")
        if size is None and self._hparam("patch_size_sampler") is None:
            return
        self._encoder().set_patch_size(patch_size_value(size))

    def _distillation_stats(self):
        tally = self.__dict__.get("_kd_tally") or _new_kd_tally()
        batches = self._reduce(tally["batches"], torch.distributed.ReduceOp.SUM)
        stats = {}
        for key in ("kd_task", "kd_term"):
            total = self._reduce(tally[key], torch.distributed.ReduceOp.SUM)
            stats[key] = total / max(batches, 1)
        for key in ("kd_clips", "kd_missing"):
            stats[key] = round(self._reduce(tally[key], torch.distributed.ReduceOp.SUM))
        return stats

    # ------------------------------------------------------------------
    # Patch-size sweep
    # ------------------------------------------------------------------
    def evaluate_patch_sizes(
        self,
        test_set,
        patch_sizes,
        output_stem=None,
        max_key=None,
        min_key=None,
        test_loader_kwargs=None,
    ):
        """Test metrics and throughput of the current weights at every patch size.

        Features of every test batch are computed once and the encoder and
        head run on them at each size in turn
        (``fastast_plugin.flexi_eval.evaluate_patch_sizes``; clips/s times
        that forward only). Call it after ``evaluate`` (whose checkpoint is
        then loaded), or give ``max_key`` / ``min_key`` to load one. Runs on
        the main process only (the others wait); in debug mode on
        ``debug_batches`` batches. The encoder's patch size is restored
        afterwards.

        Arguments
        ---------
        test_set : Dataset or DataLoader
            The test data.
        patch_sizes : list
            Sizes (ints, ``"FxT"`` strings or ``[freq, time]`` pairs); the
            encoder must be flexible unless only its base size is asked.
        output_stem : str, optional
            Writes ``<stem>.csv``, ``<stem>.md`` and (with matplotlib)
            ``<stem>.png``.
        max_key : str, optional
            Load the checkpoint with the highest value of this key first.
        min_key : str, optional
            Load the checkpoint with the lowest value of this key first.
        test_loader_kwargs : dict, optional
            DataLoader arguments (batch size, workers).

        Returns
        -------
        list of dict
            One row per patch size (``fastast_plugin.flexi_eval.EVAL_COLUMNS``:
            patch size, stride, grid, tokens, acc, mAP, clips/s, GFLOPs per
            clip, clips), broadcast to every process.

        Example
        -------
        >>> from fastast_plugin.ast import ASTEncoder, ASTHead
        >>> from fastast_plugin.features import KaldiFbank
        >>> modules = {
        ...     "compute_features": KaldiFbank(target_length=64),
        ...     "embedding_model": ASTEncoder("tiny224", input_tdim=64, depth=1,
        ...                                   fstride=16, tstride=16, flexible="both"),
        ...     "classifier": ASTHead(192, 2),
        ... }
        >>> brain = AudioClassifierBrain(
        ...     modules, hparams={"n_classes": 2}, run_opts={"device": "cpu"}
        ... )
        >>> data = sb.dataio.dataset.DynamicItemDataset(
        ...     {f"c{i}": {"sig": torch.randn(8000), "label_encoded": torch.tensor([i % 2])}
        ...      for i in range(4)},
        ...     output_keys=["id", "sig", "label_encoded"],
        ... )
        >>> rows = brain.evaluate_patch_sizes(data, [16, 32], test_loader_kwargs={"batch_size": 2})
        >>> [(row["patch_size"], row["tokens"], row["clips"]) for row in rows]
        [('16', 34, 4), ('32', 10, 4)]
        """
        sizes = [patch_size_value(size) for size in patch_sizes]
        if not sizes:
            raise ValueError("patch_sizes must hold at least one patch size, got []")
        encoder = self._encoder()
        if getattr(encoder, "flexible", "none") == "none":
            base = encoder.patch_embed.base_patch_size
            other = [s for s in sizes if to_pair(s) != tuple(base)]
            if other:
                raise ValueError(
                    f"patch_sizes {other} differ from the base patch {tuple(base)} of "
                    "an encoder with flexible='none'"
                )
        if max_key is not None or min_key is not None:
            self.on_evaluate_start(max_key=max_key, min_key=min_key)
        return sb.utils.distributed.run_on_main(
            self._patch_sweep, args=[test_set, sizes, output_stem, test_loader_kwargs or {}]
        )

    def _patch_sweep(self, test_set, sizes, output_stem, loader_kwargs):
        if isinstance(test_set, torch.utils.data.DataLoader):
            loader = test_set
        else:
            loader = sb.dataio.dataloader.make_dataloader(test_set, **loader_kwargs)
        model = ASTClassifier(self._encoder(), _unwrap(self.modules.classifier))
        self.modules.eval()
        limit = self.debug_batches if self.debug else None
        logger.info("Patch-size sweep over %s", ", ".join(map(str, sizes)))
        rows = flexi_eval.evaluate_patch_sizes(
            model,
            self._sweep_batches(loader, limit),
            sizes,
            device=self.device,
            dtype=EVAL_DTYPES[self.eval_precision],
        )
        if output_stem:
            csv_path, md_path = flexi_eval.write_table(
                rows, flexi_eval.EVAL_COLUMNS, output_stem
            )
            try:
                flexi_eval.plot_patch_sweep(rows, output_stem + ".png")
            except ImportError:
                logger.warning("matplotlib is not installed: no plot %s.png", output_stem)
            with open(md_path, encoding="utf-8") as f:
                logger.info("Patch-size sweep (%s):\n%s", csv_path, f.read())
        return rows

    def _sweep_batches(self, loader, limit):
        """``(ids, features, targets on the CPU)`` per test batch."""
        for i, batch in enumerate(loader):
            if limit is not None and i >= limit:
                break
            batch = batch.to(self.device)
            wavs, wav_lens = batch.sig
            with torch.no_grad():
                feats = self.modules.compute_features(wavs, wav_lens)
            yield batch.id, feats, self.targets(batch).cpu()

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def _hparam(self, name, default=None):
        return getattr(self.hparams, name, default) if self.hparams else default

    def _encoder(self):
        return _unwrap(self.modules.embedding_model)

    def _feature_augmentations(self):
        augment = self._hparam("feature_augment")
        if augment is None:
            return []
        if isinstance(augment, (list, tuple)):
            return [a for a in augment if a is not None]
        return [augment]

    def _optimizers(self):
        if self.optimizers_dict:
            return list(self.optimizers_dict.values())
        optimizer = getattr(self, "optimizer", None)
        return [optimizer] if optimizer is not None else []

    def _set_lr(self, lr):
        for optimizer in self._optimizers():
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)

    def _current_lr(self):
        optimizers = self._optimizers()
        return optimizers[0].param_groups[0]["lr"] if optimizers else None

    def _reduce(self, value, op):
        tensor = torch.tensor(float(value), device=self.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(tensor, op=op)
        return tensor.item()

    def _mean_over_ranks(self, value):
        world = (
            torch.distributed.get_world_size()
            if torch.distributed.is_available() and torch.distributed.is_initialized()
            else 1
        )
        return self._reduce(value, torch.distributed.ReduceOp.SUM) / world

    def _max_over_ranks(self, value):
        return self._reduce(value, torch.distributed.ReduceOp.MAX)

    def _log(self, meta, train_stats, stats):
        """Send stats to the train logger if the recipe has one."""
        train_logger = self._hparam("train_logger")
        if train_logger is None:
            logger.info("%s train=%s stats=%s", meta, train_stats, stats)
        elif train_stats is None:
            train_logger.log_stats(meta, test_stats=stats)
        else:
            train_logger.log_stats(meta, train_stats=train_stats, valid_stats=stats)

    def _write_test_metrics(self, stats, epoch):
        """Machine-readable results: metrics, merging, patch size, throughput."""
        path = self._hparam("test_metrics_file")
        if path is None:
            folder = self._hparam("output_folder")
            if folder is None:
                return
            path = os.path.join(folder, "test_metrics.json")
        if not sb.utils.distributed.if_main_process():
            return
        encoder = _unwrap(self.modules.embedding_model)
        record = dict(stats)
        record["epoch"] = epoch
        record["r"] = getattr(encoder, "r", None)
        record["keep_ratio"] = getattr(encoder, "keep_ratio", None)
        record["patch_size"] = getattr(encoder, "patch_size", None)
        record["patch_stride"] = getattr(encoder, "patch_stride", None)
        sampler = self._hparam("patch_size_sampler")
        if sampler is not None:
            record["train_patch_sizes"] = list(sampler.sizes)
        teacher = self._hparam("teacher")
        if teacher is not None and self._hparam("kd_loss") is not None:
            record["teacher"] = str(getattr(teacher, "source", type(teacher).__name__))
        if hasattr(encoder, "merge_schedule"):
            counts = token_counts(
                encoder.num_tokens, encoder.merge_schedule(), encoder.num_prefix_tokens
            )
            record["tokens_in"] = encoder.num_tokens
            record["tokens_out"] = counts[-1] if counts else encoder.num_tokens
        record["device"] = str(self.device)
        record["precision"] = self.eval_precision
        record["world_size"] = (
            torch.distributed.get_world_size()
            if torch.distributed.is_available() and torch.distributed.is_initialized()
            else 1
        )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(record, f, indent=2, default=str)
        logger.info("Test metrics written to %s", path)

    def _export_model(self):
        """The tested weights as one ``ASTClassifier`` state dict at ``model_file``."""
        path = self._hparam("model_file")
        if not path or not sb.utils.distributed.if_main_process():
            return
        state = {
            f"{prefix}.{key}": value.detach().cpu()
            for prefix, module in (
                ("encoder", self._encoder()),
                ("head", _unwrap(self.modules.classifier)),
            )
            for key, value in module.state_dict().items()
        }
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.partial"
        torch.save(state, tmp)
        os.replace(tmp, path)
        logger.info("Model written to %s", path)


def _new_kd_tally():
    return {"batches": 0, "kd_missing": 0, "kd_clips": 0, "kd_task": 0.0, "kd_term": 0.0}
