"""Teacher sources for knowledge distillation: a frozen model run online, or stored logits.

Every source answers one call, ``teacher(wavs, wav_lens, ids) ->
TeacherOutput(logits [B, C], mask [B])``, and names where it comes from in its
``source`` field (what the Brain records in ``test_metrics.json``):

* ``OnlineTeacher``: a frozen module (DyMN with ``DyMNFrontEnd``, or any AST
  classifier with its features) run under ``torch.no_grad()`` and always in
  eval mode.
* ``LogitsStore``: precomputed logits, one ``logits.npy`` array ``[N, C]``
  (memory-mapped, read without pickle) and an ``index.json`` ``{clip id:
  row}`` (``fastast_plugin.training.logits_store``), written by
  ``fastast_plugin.training.precompute`` (``fastast precompute``) or imported
  from EfficientAT's release (``fastast_plugin.training.efficientat``).
* ``BatchLogits``: logits that come with the batch (WebDataset shards
  written with a teacher, ``fastast_plugin.data.shards``); it reads the batch
  (``reads_batch``), so ``AudioClassifierBrain`` calls it as
  ``teacher(batch)``.

Recipes build their teacher from YAML with ``build_teacher``: exactly one of
a checkpoint run online (a DyMN, ``build_dymn_teacher``, or a fixed-patch AST
for knowledge flexification, ``_build_ast_teacher``) or a logits store; with a
cross-validation fold the path must hold a ``{fold}`` placeholder, so that
each fold gets a teacher that never saw its test clips. Every builder checks
the teacher's class count against the student's with
``_check_teacher_classes``.

Authors
 * fastast developers 2026
"""

import os
from typing import Literal, NamedTuple

import numpy as np
import torch
from speechbrain.utils.logger import get_logger
from torch import nn

from fastast_plugin.data.dataio import fold_path
from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
from fastast_plugin.models.dymn.weights import load_dymn, load_dymn_file
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.training.logits_store import read_store
from fastast_plugin.weights.registry import find, resolve

__all__ = [
    "BatchLogits",
    "LogitsStore",
    "OnlineTeacher",
    "TeacherOutput",
    "build_dymn_teacher",
    "build_teacher",
]

logger = get_logger(__name__)

_TEACHER_KINDS = ("dymn", "ast")


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


def _check_teacher_classes(classes, num_classes, source):
    """The one check that a teacher predicts as many classes as the student.

    Arguments
    ---------
    classes : int
        The teacher's number of classes.
    num_classes : int, optional
        The student's; None skips the check.
    source : str
        The teacher's file or folder, for the message.

    Raises
    ------
    ValueError
        Naming the source and both counts.

    Example
    -------
    >>> _check_teacher_classes(3, 3, "t.pt")
    >>> _check_teacher_classes(3, 4, "t.pt")
    Traceback (most recent call last):
    ...
    ValueError: teacher 't.pt' has 3 classes, but the student predicts num_classes=4
    """
    if num_classes is not None and classes != num_classes:
        raise ValueError(
            f"teacher {os.fspath(source)!r} has {classes} classes, but the student "
            f"predicts num_classes={num_classes}"
        )


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

    DyMN has no padding mask: with a padded batch, the teacher sees each clip
    padded with silence to the batch's length. Use fixed-length clips, or
    precompute logits (``fastast_plugin.training.precompute`` batches equal lengths
    only).

    Arguments
    ---------
    model : torch.nn.Module
        Maps features to logits ``[batch, classes]`` (also accepted:
        ``[batch, 1, classes]``, or a tuple whose first item is the logits).
    front_end : torch.nn.Module, optional
        Maps ``(wavs, wav_lens)`` to the model's input, e.g.
        ``DyMNFrontEnd(orig_sample_rate=16000)`` or ``KaldiFbank``; None feeds
        the waveforms to the model directly.
    source : str, optional
        Where the model was loaded from (a file or a released name).

    Example
    -------
    >>> teacher = OnlineTeacher(nn.Sequential(nn.Linear(16, 3), nn.Dropout(0.5)))
    >>> parent = nn.ModuleDict({"teacher": teacher}).train()
    >>> logits, mask = teacher(torch.randn(2, 16))
    >>> logits.shape, mask.tolist(), teacher.training, logits.requires_grad
    (torch.Size([2, 3]), [True, True], False, False)
    """

    def __init__(
        self,
        model: nn.Module,
        front_end: nn.Module | None = None,
        source: str | None = None,
    ):
        super().__init__()
        self.model = model
        self.front_end = front_end
        self.source = None if source is None else os.fspath(source)
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
    memory-mapped, so rows are read from disk on demand) and ``index.json``
    (``{clip id: row}``, one id per row), read by
    ``fastast_plugin.training.logits_store.read_store``;
    ``fastast_plugin.training.precompute`` writes one. Ids not in the index
    get zero logits and ``mask`` False, are counted in ``n_missing`` and
    logged (a warning for the first batch with missing ids, debug after).

    Arguments
    ---------
    folder : str
        The store folder (also its ``source``).
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

    def __init__(self, folder: str, num_classes: int | None = None):
        self.folder = os.fspath(folder)
        self.source = self.folder
        self.logits, self.index = read_store(self.folder)
        self.num_classes = int(self.logits.shape[1])
        _check_teacher_classes(self.num_classes, num_classes, self.folder)
        self.reset_counts()

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
            len(missing),
            batch,
            self.folder,
            missing[0],
            self.n_missing,
        )


class BatchLogits:
    """Teacher logits carried by each batch (``teacher_logits`` and ``teacher_mask``), e.g. from shards.

    ``fastast_plugin.data.shards`` gives every clip of shards written with a
    teacher ``teacher_logits`` ``[C]`` and ``teacher_mask`` ``[1]`` (1.0
    where the clip has logits). ``reads_batch`` tells the Brain to call
    ``teacher(batch)``.

    Arguments
    ---------
    num_classes : int, optional
        The student's classes, checked against the batch's logits.
    source : str
        Recorded as the teacher's source.

    Example
    -------
    >>> import speechbrain as sb
    >>> batch = sb.dataio.batch.PaddedBatch([
    ...     {"teacher_logits": torch.ones(3), "teacher_mask": torch.tensor([1.0])},
    ...     {"teacher_logits": torch.zeros(3), "teacher_mask": torch.tensor([0.0])},
    ... ])
    >>> logits, mask = BatchLogits(num_classes=3)(batch)
    >>> logits.shape, mask.tolist()
    (torch.Size([2, 3]), [True, False])
    """

    reads_batch = True

    def __init__(self, num_classes: int | None = None, source: str = "train_shards"):
        self.num_classes = num_classes
        self.source = source

    def __call__(self, batch):
        """``TeacherOutput`` from the batch's ``teacher_logits`` and ``teacher_mask``.

        Arguments
        ---------
        batch : PaddedBatch
            With ``teacher_logits`` and ``teacher_mask``.

        Returns
        -------
        TeacherOutput
            Float32 logits ``[batch, C]`` and the bool mask ``[batch]``.
        """
        if not hasattr(batch, "teacher_logits") or not hasattr(batch, "teacher_mask"):
            raise ValueError(
                "the batches carry no teacher_logits: train from shards written with a "
                "teacher (make_shards.py write --teacher_logits_dir=...), or set "
                "teacher_in_shards: False and give a teacher_checkpoint / teacher_logits_dir"
            )
        logits = getattr(batch.teacher_logits, "data", batch.teacher_logits).float()
        mask = getattr(batch.teacher_mask, "data", batch.teacher_mask).reshape(-1) > 0.5
        _check_teacher_classes(logits.shape[-1], self.num_classes, self.source)
        return TeacherOutput(logits, mask)


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------
def build_dymn_teacher(
    name: str | None = None,
    checkpoint_dir: str | None = None,
    weights: str | None = None,
    width_mult: float = 1.0,
    sample_rate: int = 16000,
    download: bool = False,
    num_classes: int | None = None,
):
    """A DyMN with its front-end as an ``OnlineTeacher``.

    Either a released EfficientAT checkpoint by ``name`` from
    ``checkpoint_dir`` (``fastast_plugin.models.dymn.weights.load_dymn``), or a
    fine-tuned state dict file ``weights`` (e.g. an ESC-50 teacher trained
    without the student's test fold) for a DyMN of ``width_mult``; its class
    count is read from the file. The front-end resamples ``sample_rate``
    input to DyMN's 32 kHz.

    Arguments
    ---------
    name : str, optional
        E.g. ``"dymn10_as"``.
    checkpoint_dir : str, optional
        Folder with the released ``.pt`` files (with ``name``); None: the
        registry's cache (``fastast_plugin.weights.registry``).
    weights : str, optional
        Path of a DyMN state dict (instead of ``name``).
    width_mult : float
        DyMN width for ``weights`` (0.4, 1.0 or 2.0).
    sample_rate : int
        Rate of the input waveforms.
    download : bool
        Download a missing released checkpoint (with ``name``).
    num_classes : int, optional
        The student's classes; the teacher's must match.

    Returns
    -------
    OnlineTeacher
        Frozen, in eval mode; ``source`` is ``weights`` or ``name``.

    Example
    -------
    >>> from fastast_plugin.models.dymn.model import DyMN
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
        model, source = load_dymn(name, checkpoint_dir, download=download), name
    else:
        model, source = load_dymn_file(weights, width_mult=width_mult), os.fspath(weights)
    _check_teacher_classes(model.num_classes, num_classes, source)
    return OnlineTeacher(model, DyMNFrontEnd(orig_sample_rate=sample_rate), source)


def _build_ast_teacher(
    checkpoint: str,
    target_length: int,
    mean: float | None = None,
    std: float | None = None,
    sample_rate: int = 16000,
    n_mels: int = 128,
    num_classes: int | None = None,
    **overrides,
):
    """A frozen AST classifier with AST's Kaldi fbank front-end as an ``OnlineTeacher``.

    The teacher of knowledge flexification (FlexiAST, Feng et al., "FlexiAST:
    Flexibility is What AST Needs", Interspeech 2023): a fixed-patch AST
    classifier (any checkpoint ``fastast_plugin.models.pretrained.from_pretrained``
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
        Frozen, in eval mode; ``source`` is ``checkpoint``.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> path = getfixture("tmp_path") / "fixed.pt"
    >>> encoder = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16, tstride=16)
    >>> torch.save(ASTClassifier(encoder, ASTHead(192, 4)).state_dict(), path)
    >>> teacher = _build_ast_teacher(path, target_length=64, num_classes=4)
    >>> logits, mask = teacher(torch.randn(2, 8000))
    >>> logits.shape, teacher.training
    (torch.Size([2, 4]), False)
    """
    model = from_pretrained(checkpoint, input_tdim=target_length, input_fdim=n_mels, **overrides)
    _check_teacher_classes(model.head.linear.out_features, num_classes, checkpoint)
    front_end = KaldiFbank(sample_rate, n_mels, target_length, mean, std)
    return OnlineTeacher(model, front_end, checkpoint)


def build_teacher(
    teacher_checkpoint: str | None = "",
    teacher_logits_dir: str | None = "",
    kind: Literal["dymn", "ast"] | None = "dymn",
    num_classes: int | None = None,
    fold: int | None = None,
    required: bool = True,
    teacher_in_shards: bool = False,
    **kwargs,
):
    """The teacher a recipe's YAML asks for: an online model, a logits store, or logits in the shards.

    Exactly one of ``teacher_checkpoint`` (run online: a DyMN state dict for
    ``kind="dymn"``, built by ``build_dymn_teacher``; an AST classifier for
    ``kind="ast"``, built by ``_build_ast_teacher``) and ``teacher_logits_dir``
    (a ``LogitsStore``) may be set; with neither, the result is None
    (no distillation) unless ``required``. With a cross-validation ``fold``
    the path must contain ``{fold}`` and is formatted with it
    (``fastast_plugin.data.dataio.fold_path``): a teacher trained on some folds
    has seen the other folds' test clips, so one teacher for every fold would
    leak the test fold. The chosen path is the teacher's ``source``
    (recorded in ``test_metrics.json``).

    Arguments
    ---------
    teacher_checkpoint : str, optional
        Checkpoint file of an online teacher, or a registry name
        (``fastast_plugin.weights.registry``; a DyMN name sets ``width_mult``); empty
        means unset.
    teacher_logits_dir : str, optional
        Folder of precomputed logits; empty means unset.
    kind : str, optional
        ``"dymn"`` (also None) or ``"ast"``: the model in
        ``teacher_checkpoint``.
    num_classes : int, optional
        The student's classes; the teacher's must match.
    fold : int, optional
        Cross-validation fold (the test fold of this run).
    required : bool
        Raise when neither source is set (True in ``tome_ast_kd.yaml``;
        False in ``flexiast.yaml``, where no teacher means supervised
        flexification).
    teacher_in_shards : bool
        The logits come with the batches (``BatchLogits``: training from
        shards written with a teacher); then neither path may be set.
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
    >>> from fastast_plugin.models.dymn.model import DyMN
    >>> tmp = getfixture("tmp_path")
    >>> for fold in (1, 2):
    ...     torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp / f"t{fold}.pt")
    >>> teacher = build_teacher(str(tmp / "t{fold}.pt"), num_classes=3, fold=2, width_mult=0.4)
    >>> teacher.source.endswith("t2.pt"), teacher(torch.randn(1, 16000))[0].shape
    (True, torch.Size([1, 3]))
    >>> build_teacher("", "", required=False) is None
    True
    """
    if teacher_in_shards:
        if teacher_checkpoint or teacher_logits_dir:
            raise ValueError(
                "teacher_in_shards takes the teacher logits from the shards; leave "
                f"teacher_checkpoint ({teacher_checkpoint!r}) and teacher_logits_dir "
                f"({teacher_logits_dir!r}) empty"
            )
        return BatchLogits(num_classes=num_classes)
    name, pattern = _one_source(teacher_checkpoint, teacher_logits_dir, required)
    if name is None:
        logger.info("No teacher set: training without distillation")
        return None
    kind = kind or "dymn"
    if kind not in _TEACHER_KINDS:
        raise ValueError(f"kind must be one of {_TEACHER_KINDS}, got {kind!r}")
    path = resolve(fold_path(pattern, fold, required=True, name=name))
    entry = find(pattern)
    if entry is not None and entry.model == "dymn" and kind == "dymn":
        kwargs["width_mult"] = entry.architecture["width_mult"]  # the name decides
    if not os.path.exists(path):
        where = "" if fold is None else f" for fold {fold}"
        raise FileNotFoundError(f"{name}{where} not found: {path!r}")
    if name == "teacher_logits_dir":
        teacher = LogitsStore(path, num_classes=num_classes)
    elif kind == "ast":
        teacher = _build_ast_teacher(path, num_classes=num_classes, **kwargs)
    else:
        teacher = build_dymn_teacher(weights=path, num_classes=num_classes, **kwargs)
    logger.info("Teacher: %s from %s", type(teacher).__name__, path)
    return teacher


def _one_source(teacher_checkpoint, teacher_logits_dir, required):
    """``(setting name, path)`` of the one teacher source set, or ``(None, None)``."""
    if teacher_checkpoint and teacher_logits_dir:
        raise ValueError(
            "set exactly one teacher source, got both teacher_checkpoint="
            f"{teacher_checkpoint!r} and teacher_logits_dir={teacher_logits_dir!r}"
        )
    if teacher_checkpoint:
        return "teacher_checkpoint", teacher_checkpoint
    if teacher_logits_dir:
        return "teacher_logits_dir", teacher_logits_dir
    if required:
        raise ValueError(
            "no teacher: set exactly one of teacher_checkpoint (a model file run "
            "online) or teacher_logits_dir (a store written by `fastast "
            "precompute`), got neither"
        )
    return None, None
