"""Classification metrics that count every evaluation clip exactly once, also under DDP.

SpeechBrain does not shard the validation and test sets across DDP ranks
and its ``MetricStats`` does not reduce across ranks. ``AudioClassifierBrain``
shards them (each rank evaluates a disjoint slice, see
``fastast_plugin.dataio.EvalShardSampler``) and ``ClassificationStats``
gathers the per-clip scores of all ranks before computing the metrics, keyed
by clip id: a clip seen by several ranks (an unsharded loader) still counts
once, and every rank ends with the same numbers.

Authors
 * fastast developers 2026
"""

import json
import math
import os

import torch
import torch.distributed as dist
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)


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


def _world_size():
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class ClassificationStats:
    """Accumulates per-clip scores, targets and losses; summarises over all ranks.

    Example
    -------
    >>> stats = ClassificationStats()
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
                f"ClassificationStats.append: {len(ids)} ids, scores "
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
        if _world_size() > 1:
            parts = [None] * _world_size()
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

    def summarize(self):
        """Metrics over every clip of every rank.

        Returns
        -------
        dict
            ``acc`` (top-1 accuracy), ``loss`` (mean per-clip loss, if
            losses were given) and ``clips`` (number of distinct clips).
        """
        ids, scores, targets, losses = self.gather()
        if not ids:
            raise ValueError("ClassificationStats.summarize: no clips were appended")
        summary = {"acc": accuracy(scores, targets).mean().item()}
        if losses is not None:
            summary["loss"] = losses.mean().item()
        summary["clips"] = len(ids)
        return summary


def summarize_folds(metric_files, output_folder, metric="acc"):
    """Mean and standard deviation of a metric over cross-validation folds.

    Writes ``cv_results.json`` and a Markdown table ``cv_results.md`` into
    ``output_folder``.

    Arguments
    ---------
    metric_files : dict
        Fold name to the path of that fold's ``test_metrics.json``.
    output_folder : str
        Where the summary files go.
    metric : str
        Key of the metric in the ``test_metrics.json`` files.

    Returns
    -------
    dict
        ``folds`` (fold name to value), ``mean``, ``std`` (sample standard
        deviation, 0 for one fold) and ``metric``.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> files = {}
    >>> for fold, acc in (("fold_1", 0.9), ("fold_2", 0.8)):
    ...     files[fold] = str(tmp / f"{fold}.json")
    ...     with open(files[fold], "w") as f:
    ...         json.dump({"acc": acc}, f)
    >>> summary = summarize_folds(files, str(tmp))
    >>> round(summary["mean"], 3), round(summary["std"], 4)
    (0.85, 0.0707)
    """
    values = {}
    for fold, path in metric_files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"summarize_folds: no test metrics for {fold} at {path}; run that "
                "fold first"
            )
        with open(path) as f:
            record = json.load(f)
        if metric not in record:
            raise KeyError(
                f"summarize_folds: {path} has no {metric!r}, keys are {sorted(record)}"
            )
        values[fold] = float(record[metric])
    if not values:
        raise ValueError("summarize_folds: no folds given")
    mean = sum(values.values()) / len(values)
    variance = (
        sum((v - mean) ** 2 for v in values.values()) / (len(values) - 1)
        if len(values) > 1
        else 0.0
    )
    summary = {
        "metric": metric,
        "folds": values,
        "mean": mean,
        "std": math.sqrt(variance),
    }
    os.makedirs(output_folder, exist_ok=True)
    with open(os.path.join(output_folder, "cv_results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    lines = [f"| fold | {metric} |", "|---|---|"]
    lines += [f"| {fold} | {value:.4f} |" for fold, value in values.items()]
    lines.append(f"| mean ± std | {mean:.4f} ± {summary['std']:.4f} |")
    with open(os.path.join(output_folder, "cv_results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    logger.info(
        "Cross-validation %s over %d folds: %.4f ± %.4f",
        metric,
        len(values),
        mean,
        summary["std"],
    )
    return summary
