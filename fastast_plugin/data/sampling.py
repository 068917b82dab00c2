"""AST's class-balanced sampling for full AudioSet, as a sampler that also works under DDP.

AST (Gong et al., "AST: Audio Spectrogram Transformer", Interspeech 2021)
trains on full AudioSet with a ``WeightedRandomSampler`` whose clip weights
come from its ``src/gen_weight_file.py``: each label gets
``1000 / (count + 0.01)``, ``count`` being the number of training clips
that carry it, and each clip the sum of its labels' weights, so clips of
rare classes are drawn more often. Clips are drawn with replacement,
``len(dataset)`` per epoch.

``balanced_sampler`` builds SpeechBrain's
``ReproducibleWeightedRandomSampler`` with these weights; give it as the
``sampler`` of the training loader. Under DDP, ``sb.Brain`` wraps any
training sampler in ``DistributedSamplerWrapper``: every rank draws the same
sequence (same seed and epoch) and keeps a disjoint ``1 / world_size`` of
it, so the ranks together draw by the weights.

``EvalShardSampler`` splits an evaluation set between DDP ranks without
the repeated items of ``DistributedSampler``.

Authors
 * fastast developers 2026
"""

import collections
import math

import numpy as np
import torch
import torch.distributed as dist
from speechbrain.dataio.sampler import ReproducibleWeightedRandomSampler

__all__ = ["EvalShardSampler", "balanced_sampler", "distributed_world"]

_LABEL_WEIGHT_SCALE = 1000.0
_COUNT_EPSILON = 0.01


def _ast_sample_weights(targets):
    """AST's per-clip sampling weights from the training labels (``gen_weight_file.py``).

    Arguments
    ---------
    targets : torch.Tensor, numpy.ndarray or list of lists
        ``[clips, classes]`` multi-hot training targets, or each clip's
        labels (mids or indices; e.g. 2M AudioSet clips without building a
        dense ``[2M, 527]`` array).

    Returns
    -------
    numpy.ndarray
        ``[clips]`` float64: the sum over each clip's labels of
        ``1000 / (label count + 0.01)``.

    Example
    -------
    >>> targets = np.array([[1, 0], [1, 0], [1, 1]])
    >>> _ast_sample_weights(targets).round(2)  # label counts 3 and 1
    array([ 332.23,  332.23, 1322.32])
    >>> _ast_sample_weights([["/m/a"], ["/m/a"], ["/m/a", "/m/b"]]).round(2)
    array([ 332.23,  332.23, 1322.32])
    """
    if isinstance(targets, (list, tuple)) and all(isinstance(t, (list, tuple)) for t in targets):
        counts = collections.Counter(label for labels in targets for label in set(labels))
        weights = np.array(
            [
                sum(_LABEL_WEIGHT_SCALE / (counts[label] + _COUNT_EPSILON) for label in set(labels))
                for labels in targets
            ],
            dtype=np.float64,
        )
        if (weights <= 0).any():
            raise ValueError(
                f"ast_sample_weights: {(weights <= 0).sum()} clips have no label; every "
                "clip needs at least one to be drawn"
            )
        return weights
    positive = np.asarray(targets, dtype=np.float64) >= 0.5
    if positive.ndim != 2:
        raise ValueError(
            f"ast_sample_weights: targets must be [clips, classes], got {positive.shape}"
        )
    label_weight = _LABEL_WEIGHT_SCALE / (positive.sum(axis=0) + _COUNT_EPSILON)
    weights = positive @ label_weight
    if (weights <= 0).any():
        raise ValueError(
            f"ast_sample_weights: {(weights <= 0).sum()} clips have no label; every "
            "clip needs at least one positive to be drawn"
        )
    return weights


def _dataset_targets(dataset, key="label_encoded"):
    """The ``[clips, classes]`` targets of a dataset, read without loading audio.

    Arguments
    ---------
    dataset : DynamicItemDataset
        With a ``key`` item (multi-hot, e.g. from
        ``fastast_plugin.data.audioset.multilabel_datasets``).
    key : str
        The target item.

    Returns
    -------
    torch.Tensor
        Stacked targets in dataset order.

    Example
    -------
    >>> import speechbrain as sb
    >>> data = sb.dataio.dataset.DynamicItemDataset(
    ...     {"a": {"t": [1.0, 0.0]}, "b": {"t": [0.0, 1.0]}}, output_keys=["t"])
    >>> _dataset_targets(data, "t").tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    with dataset.output_keys_as([key]):
        return torch.stack([torch.as_tensor(dataset[i][key]) for i in range(len(dataset))])


def balanced_sampler(targets, seed=0, num_samples=None):
    """A ``ReproducibleWeightedRandomSampler`` drawing clips by AST's weights, with replacement.

    Arguments
    ---------
    targets : torch.Tensor, numpy.ndarray, list of lists or DynamicItemDataset
        Multi-hot training targets, each clip's labels, or the training
        dataset (its ``label_encoded``).
    seed : int
        Base seed; epoch ``e`` draws with ``seed + e`` (SpeechBrain's
        ``set_epoch``), the same on every DDP rank.
    num_samples : int, optional
        Draws per epoch (all ranks together); default: the number of clips.

    Returns
    -------
    ReproducibleWeightedRandomSampler
        Give it as ``sampler`` in the training loader options (without
        ``shuffle``).

    Example
    -------
    >>> sampler = balanced_sampler(np.array([[1, 0], [1, 0], [1, 1]]), seed=3)
    >>> len(sampler), len(list(sampler))
    (3, 3)
    """
    if hasattr(targets, "output_keys_as"):
        targets = _dataset_targets(targets)
    weights = _ast_sample_weights(targets)
    return ReproducibleWeightedRandomSampler(
        weights.tolist(),
        num_samples=len(weights) if num_samples is None else int(num_samples),
        replacement=True,
        seed=seed,
    )


def distributed_world():
    """This process' rank and the number of processes (0 and 1 outside DDP).

    Returns
    -------
    rank : int
        Rank in the default process group.
    world_size : int
        Number of processes.

    Example
    -------
    >>> distributed_world()
    (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EvalShardSampler(torch.utils.data.Sampler):
    """Disjoint, unpadded slices of an evaluation set, one per DDP rank.

    Rank ``r`` of ``n`` gets indices ``r, r + n, r + 2n, ...``; together the
    ranks cover every index exactly once (``DistributedSampler`` instead
    pads with repeated items so that ranks get equal counts, which would
    count some clips twice).

    Arguments
    ---------
    num_items : int
        Size of the dataset.
    rank : int
        This process' rank.
    world_size : int
        Number of processes.

    Example
    -------
    >>> [list(EvalShardSampler(5, rank, 2)) for rank in (0, 1)]
    [[0, 2, 4], [1, 3]]
    """

    def __init__(self, num_items, rank, world_size):
        if not 0 <= rank < world_size:
            raise ValueError(f"EvalShardSampler: rank must be in [0, {world_size}), got {rank}")
        self.num_items = num_items
        self.rank = rank
        self.world_size = world_size

    def __iter__(self):
        return iter(range(self.rank, self.num_items, self.world_size))

    def __len__(self):
        return max(0, math.ceil((self.num_items - self.rank) / self.world_size))
