"""Classification metrics that count every evaluation clip exactly once, also under DDP.

SpeechBrain does not shard the validation and test sets across DDP ranks
and its ``MetricStats`` does not reduce across ranks. ``AudioClassifierBrain``
shards them (each rank evaluates a disjoint slice, see
``fastast_plugin.data.sampling.EvalShardSampler``) and ``ClipScores`` gathers the
per-clip scores of all ranks before computing the metrics, keyed by clip id:
a clip seen by several ranks (an unsharded loader) still counts once, and
every rank ends with the same numbers. (SpeechBrain's own
``speechbrain.utils.metric_stats.ClassificationStats`` is a different thing:
string predictions and a confusion matrix on one process.)

``accuracy`` is AST's top-1 accuracy; ``mean_average_precision`` is the mAP
AST reports, computed with ``sklearn.metrics.average_precision_score``;
``_mean_auc`` and ``_d_prime`` are AST's mean ROC AUC and its d-prime
(``sqrt(2) * Phi^-1(mAUC)``, AST's ``src/utilities/stats.py`` ``d_prime``,
with ``scipy.stats.norm.ppf``). ``ClipScores.summarize(multilabel=True)``
adds all three, computed once over the gathered clips of every rank.

Authors
 * fastast developers 2026
"""

import numpy as np
import torch
import torch.distributed as dist
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from fastast_plugin.data.sampling import distributed_world

__all__ = ["ClipScores", "accuracy", "mean_average_precision", "multilabel_metrics"]


def accuracy(scores, targets):
    """Per-clip top-1 accuracy against the argmax of (soft) targets, as AST computes it.

    Arguments
    ---------
    scores : torch.Tensor
        ``[batch, classes]`` logits or probabilities.
    targets : torch.Tensor
        ``[batch, classes]`` one-hot, multi-hot or mixed-up targets.

    Returns
    -------
    torch.Tensor
        ``[batch]`` of 0.0 / 1.0.

    Example
    -------
    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    tensor([1., 0.])
    """
    if scores.shape != targets.shape:
        raise ValueError(
            f"accuracy: scores {tuple(scores.shape)} and targets "
            f"{tuple(targets.shape)} must have the same shape [batch, classes]"
        )
    return (scores.argmax(-1) == targets.argmax(-1)).float()


def mean_average_precision(scores, targets):
    """Macro mean average precision over the classes that have positives, as AST reports it.

    Per class, ``sklearn.metrics.average_precision_score`` (AST's
    ``src/utilities/stats.py`` calls it class by class); the mean is over
    the classes with at least one positive clip (for a class without
    positives, average precision is undefined).

    Arguments
    ---------
    scores : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` logits or probabilities (only their order
        within a class matters).
    targets : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` one-hot or multi-hot targets; a target >= 0.5
        is a positive.

    Returns
    -------
    float
        The mAP, in [0, 1].

    Example
    -------
    >>> scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> round(mean_average_precision(scores, targets), 4)  # (5/6 + 1) / 2
    0.9167
    """
    scores = torch.as_tensor(np.asarray(scores)).float().numpy()
    positive = torch.as_tensor(np.asarray(targets)).float().numpy() >= 0.5
    if scores.shape != positive.shape or scores.ndim != 2:
        raise ValueError(
            f"mean_average_precision: scores {scores.shape} and targets "
            f"{positive.shape} must have the same shape [clips, classes]"
        )
    present = positive.any(axis=0)
    if not present.any():
        raise ValueError("mean_average_precision: no class has a positive clip")
    per_class = average_precision_score(positive[:, present], scores[:, present], average=None)
    return float(np.mean(per_class))


def _mean_auc(scores, targets):
    """Mean ROC AUC over the classes that have both positive and negative clips.

    Per class ``sklearn.metrics.roc_auc_score``, as AST's
    ``calculate_stats``; a class whose clips are all positive or all
    negative has no AUC and is left out of the mean.

    Arguments
    ---------
    scores : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` logits or probabilities.
    targets : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` targets; >= 0.5 is a positive.

    Returns
    -------
    float
        The mean AUC, in [0, 1].

    Example
    -------
    >>> scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> round(_mean_auc(scores, targets), 4)  # (1/2 + 1) / 2
    0.75
    """
    scores = torch.as_tensor(np.asarray(scores)).float().numpy()
    positive = torch.as_tensor(np.asarray(targets)).float().numpy() >= 0.5
    if scores.shape != positive.shape or scores.ndim != 2:
        raise ValueError(
            f"mean_auc: scores {scores.shape} and targets {positive.shape} must "
            "have the same shape [clips, classes]"
        )
    both = positive.any(axis=0) & (~positive).any(axis=0)
    if not both.any():
        raise ValueError("mean_auc: no class has both positive and negative clips")
    per_class = [roc_auc_score(positive[:, c], scores[:, c]) for c in np.flatnonzero(both)]
    return float(np.mean(per_class))


def _d_prime(auc):
    """AST's d-prime of an AUC: ``sqrt(2) * Phi^-1(auc)`` (``scipy.stats.norm.ppf``).

    The separation, in standard deviations, of two unit-variance Gaussian
    score distributions with that AUC.

    Arguments
    ---------
    auc : float
        An AUC in [0, 1] (0.5 gives 0; 1 gives ``inf``).

    Returns
    -------
    float
        The d-prime.

    Example
    -------
    >>> _d_prime(0.5), round(_d_prime(0.9), 4)
    (0.0, 1.8124)
    """
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"d_prime: auc must be in [0, 1], got {auc}")
    return float(np.sqrt(2.0) * norm.ppf(auc))


def multilabel_metrics(scores, targets):
    """``mAP``, ``mAUC`` and ``d_prime`` of one set of clips, as AST reports them.

    Arguments
    ---------
    scores : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` logits or probabilities.
    targets : torch.Tensor or numpy.ndarray
        ``[clips, classes]`` multi-hot targets.

    Returns
    -------
    dict
        ``{"mAP": ..., "mAUC": ..., "d_prime": ...}`` (AUC terms None when no
        class has both positives and negatives).

    Example
    -------
    >>> scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> {k: round(v, 4) for k, v in multilabel_metrics(scores, targets).items()}
    {'mAP': 0.9167, 'mAUC': 0.75, 'd_prime': 0.9539}
    """
    result = {"mAP": mean_average_precision(scores, targets)}
    try:
        auc = _mean_auc(scores, targets)
    except ValueError:
        result.update(mAUC=None, d_prime=None)
    else:
        result.update(mAUC=auc, d_prime=_d_prime(auc))
    return result


class ClipScores:
    """Accumulates per-clip scores, targets and losses; summarises over all ranks.

    Example
    -------
    >>> stats = ClipScores()
    >>> scores = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> stats.append(["a", "b"], scores[:2], targets[:2], torch.tensor([0.1, 0.3]))
    >>> stats.append(["c"], scores[2:], targets[2:], torch.tensor([0.2]))
    >>> summary = stats.summarize()
    >>> round(summary["acc"], 4), round(summary["loss"], 4), summary["clips"]
    (0.6667, 0.2, 3)
    """

    def __init__(self):
        self.clear()

    def clear(self):
        """Forget everything appended so far."""
        self.ids = []
        self.scores = []
        self.targets = []
        self.losses = []
        self.rank_clips = []

    def append(self, ids, scores, targets, losses=None):
        """Add one batch.

        Arguments
        ---------
        ids : list of str
            Clip ids (unique across the evaluation set).
        scores : torch.Tensor
            ``[batch, classes]`` logits.
        targets : torch.Tensor
            ``[batch, classes]`` one-hot or multi-hot targets.
        losses : torch.Tensor, optional
            ``[batch]`` per-clip losses.
        """
        if len(ids) != scores.shape[0] or scores.shape != targets.shape:
            raise ValueError(
                f"ClipScores.append: {len(ids)} ids, scores "
                f"{tuple(scores.shape)}, targets {tuple(targets.shape)}; expected "
                "one row per id and equal shapes"
            )
        self.ids.extend(ids)
        self.scores.append(scores.detach().float().cpu())
        self.targets.append(targets.detach().float().cpu())
        if losses is not None:
            self.losses.append(losses.detach().float().cpu().reshape(-1))

    def gather(self):
        """All clips of all ranks, each clip once (first occurrence), sorted by id.

        Returns
        -------
        ids : list of str
            Clip ids.
        scores : torch.Tensor
            ``[clips, classes]``.
        targets : torch.Tensor
            ``[clips, classes]``.
        losses : torch.Tensor or None
            ``[clips]``, None if no losses were appended.

        The number of clips each rank contributed (before removing
        duplicates) is left in ``self.rank_clips``.
        """
        local = (
            list(self.ids),
            torch.cat(self.scores) if self.scores else None,
            torch.cat(self.targets) if self.targets else None,
            torch.cat(self.losses) if self.losses else None,
        )
        parts = [local]
        _, world_size = distributed_world()
        if world_size > 1:
            parts = [None] * world_size
            dist.all_gather_object(parts, local)
        self.rank_clips = [len(part[0]) for part in parts]
        rows = {}
        for ids, scores, targets, losses in parts:
            for i, clip_id in enumerate(ids):
                if clip_id not in rows:
                    loss = None if losses is None else losses[i]
                    rows[clip_id] = (scores[i], targets[i], loss)
        ids = sorted(rows)
        if not ids:
            return [], torch.empty(0, 0), torch.empty(0, 0), None
        scores = torch.stack([rows[i][0] for i in ids])
        targets = torch.stack([rows[i][1] for i in ids])
        has_loss = all(rows[i][2] is not None for i in ids)
        losses = torch.stack([rows[i][2] for i in ids]) if has_loss else None
        return ids, scores, targets, losses

    def summarize(self, multilabel=False):
        """Metrics over every clip of every rank.

        Arguments
        ---------
        multilabel : bool
            Also ``mAP``, ``mAUC`` and ``d_prime`` (``multilabel_metrics``)
            over the gathered clips: computed from all ranks' scores at
            once, so they equal a one-process evaluation of the same clips
            (a mean of per-rank mAPs would not).

        Returns
        -------
        dict
            ``acc`` (top-1 accuracy), ``loss`` (mean per-clip loss, if
            losses were given), ``clips`` (number of distinct clips) and,
            with ``multilabel``, the multi-label metrics.
        """
        ids, scores, targets, losses = self.gather()
        if not ids:
            raise ValueError("ClipScores.summarize: no clips were appended")
        summary = {"acc": accuracy(scores, targets).mean().item()}
        if multilabel:
            summary.update(multilabel_metrics(scores, targets))
        if losses is not None:
            summary["loss"] = losses.mean().item()
        summary["clips"] = len(ids)
        return summary
