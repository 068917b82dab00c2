"""Unit tests for fastast_plugin.data.sampling: AST's balanced-sampling weights, alone and under DDP; evaluation shards.

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import torch
from speechbrain.dataio.sampler import DistributedSamplerWrapper

from fastast_plugin.data.sampling import (
    EvalShardSampler,
    _ast_sample_weights,
    _dataset_targets,
    balanced_sampler,
)

# clips' labels: class 0 is common (5 clips), class 1 rare (1 clip), class 2 in 2 clips
LABELS = [["a"], ["a"], ["a"], ["a", "c"], ["a", "b"], ["c"], ["c"]]


def test_weights_are_ast_gen_weight_file_by_hand():
    counts = {"a": 5, "b": 1, "c": 3}
    expected = [sum(1000 / (counts[label] + 0.01) for label in labels) for labels in LABELS]
    assert _ast_sample_weights(LABELS) == pytest.approx(expected, rel=1e-12)
    multi_hot = np.array([[label in labels for label in "abc"] for labels in LABELS], float)
    assert _ast_sample_weights(multi_hot) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="no label"):
        _ast_sample_weights(np.array([[1, 0], [0, 0]]))


def chi_square(counts, probabilities):
    expected = np.asarray(probabilities) * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# chi-square critical value, 6 degrees of freedom, p = 0.001 (statistical tables)
CRITICAL_6DOF = 22.458


def test_ddp_ranks_together_draw_by_ast_weights():
    weights = _ast_sample_weights(LABELS)
    probabilities = weights / weights.sum()
    draws_per_epoch = 14000
    sampler = balanced_sampler(LABELS, seed=7, num_samples=draws_per_epoch)
    counts = np.zeros(len(LABELS))
    for epoch in (0, 1):
        per_rank = []
        for rank in (0, 1):  # what sb.Brain builds on each of two DDP ranks
            wrapper = DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank)
            wrapper.set_epoch(epoch)
            per_rank.append(list(wrapper))
        assert [len(p) for p in per_rank] == [draws_per_epoch // 2] * 2
        drawn = np.array(per_rank[0] + per_rank[1])
        counts += np.bincount(drawn, minlength=len(LABELS))
        # together the ranks draw exactly the sampler's sequence (a partition of it)
        sampler.set_epoch(epoch)
        assert sorted(drawn.tolist()) == sorted(sampler)
    stat = chi_square(counts, probabilities)
    assert stat < CRITICAL_6DOF, (stat, counts)
    # the rare class-b clip is drawn about 5 times as often as a plain class-a clip
    assert counts[4] / counts[0] == pytest.approx(weights[4] / weights[0], rel=0.1)
    # power: the same counts are far from uniform sampling
    assert chi_square(counts, np.full(len(LABELS), 1 / len(LABELS))) > 100 * CRITICAL_6DOF


def test_epochs_draw_differently_and_reproducibly():
    first = balanced_sampler(LABELS, seed=3)
    second = balanced_sampler(LABELS, seed=3)
    first.set_epoch(1)
    second.set_epoch(1)
    assert list(first) == list(second)
    second.set_epoch(2)
    assert list(first) != list(second)


def test_targets_are_read_from_a_dataset_without_audio():
    import speechbrain as sb

    data = sb.dataio.dataset.DynamicItemDataset(
        {f"c{i}": {"labels": labels} for i, labels in enumerate(LABELS)},
        dynamic_items=[
            {
                "func": lambda labels: torch.tensor([float(x in labels) for x in "abc"]),
                "takes": ["labels"],
                "provides": "label_encoded",
            }
        ],
        output_keys=["id"],
    )
    targets = _dataset_targets(data)
    assert targets.shape == (7, 3)
    assert balanced_sampler(data).weights.tolist() == pytest.approx(_ast_sample_weights(LABELS))


@pytest.mark.parametrize("num_items,world_size", [(9, 2), (10, 3), (2, 4), (0, 2)])
def test_eval_shards_cover_every_item_exactly_once(num_items, world_size):
    shards = [list(EvalShardSampler(num_items, rank, world_size)) for rank in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(num_items))
    assert [len(EvalShardSampler(num_items, r, world_size)) for r in range(world_size)] == [
        len(shard) for shard in shards
    ]
    with pytest.raises(ValueError, match="rank must be in"):
        EvalShardSampler(num_items, world_size, world_size)
