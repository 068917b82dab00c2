"""Unit tests for fastast_plugin.evaluation.metrics: accuracy, mAP (scikit-learn) and ClipScores.

Authors
 * fastast developers 2026
"""

import pytest
import torch

from fastast_plugin.data.sampling import distributed_world
from fastast_plugin.evaluation.metrics import (
    ClipScores,
    _d_prime,
    _mean_auc,
    accuracy,
    mean_average_precision,
    multilabel_metrics,
)


def test_stats_count_each_clip_once():
    stats = ClipScores()
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    stats.append(["a", "b"], scores, targets, torch.tensor([0.0, 1.0]))
    stats.append(["b"], scores[1:], targets[1:], torch.tensor([1.0]))  # a repeat
    summary = stats.summarize()
    assert summary == {"acc": 0.5, "loss": 0.5, "clips": 2}
    assert stats.rank_clips == [3]
    assert distributed_world() == (0, 1)


def test_clip_scores_reject_bad_shapes_and_empty_summaries():
    stats = ClipScores()
    with pytest.raises(ValueError, match="no clips were appended"):
        stats.summarize()
    with pytest.raises(ValueError, match="2 ids, scores"):
        stats.append(["a", "b"], torch.zeros(1, 3), torch.zeros(1, 3))


def test_accuracy_against_the_argmax_of_soft_targets():
    scores = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    targets = torch.tensor([[0.7, 0.3], [0.6, 0.4], [1.0, 0.0]])
    assert accuracy(scores, targets).tolist() == [1.0, 0.0, 1.0]


def test_mean_average_precision_by_hand_with_ties_and_a_class_without_positives():
    scores = torch.tensor([[0.5, 0.9, 0.2], [0.5, 0.1, 0.3], [0.5, 0.8, 0.4], [0.1, 0.2, 0.1]])
    targets = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]])
    # class 0: clips 0, 1 (positive) and 2 (negative) tie at 0.5. A tied group counts
    # as one threshold, so both positives get its precision 2/3: AP = 2/3 (ranking
    # the tie in clip order, positives first, would give 1.0)
    # class 1: ranked 0.9 (neg), 0.8 (pos, precision 1/2), 0.2 (pos, 2/3), 0.1 (neg)
    # class 2: no positives, left out of the mean
    expected = (2 / 3 + (1 / 2 + 2 / 3) / 2) / 2
    assert mean_average_precision(scores, targets) == pytest.approx(expected)
    assert mean_average_precision(scores.numpy(), targets.numpy()) == pytest.approx(expected)


def test_mean_average_precision_errors():
    with pytest.raises(ValueError, match="same shape"):
        mean_average_precision(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(torch.zeros(2, 3), torch.zeros(2, 3))


# ---------------------------------------------------------------------------
# Multi-label metrics: mAUC, d-prime, and the ClipScores multi-label summary
# ---------------------------------------------------------------------------
def test_mean_auc_and_d_prime_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.1, 0.2, 0.1], [0.4, 0.6, 0.0]])
    targets = torch.tensor([[1.0, 0, 1], [0, 1, 1], [1, 0, 1], [0, 0, 1]])
    # class 0: positives 0.9, 0.1 vs negatives 0.8, 0.4: pairs won 2 of 4 -> 0.5
    # class 1: positive 0.7 vs 0.1, 0.2, 0.6: all won -> 1.0
    # class 2: all positive, no AUC (left out)
    assert _mean_auc(scores, targets) == pytest.approx(0.75)
    # Phi^-1(0.75) = 0.6744897501960817 (normal quantile table), times sqrt(2)
    assert _d_prime(0.75) == pytest.approx(0.6744897501960817 * 2**0.5, abs=1e-12)
    assert _d_prime(0.5) == 0.0 and _d_prime(1.0) == float("inf")
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        _d_prime(1.2)


def test_multilabel_metrics_match_sklearn_macro_on_random_data():
    from sklearn.metrics import average_precision_score, roc_auc_score

    generator = torch.Generator().manual_seed(0)
    targets = (torch.rand(300, 20, generator=generator) < 0.2).float()
    targets[0] = 1.0  # every class has a positive ...
    targets[1] = 0.0  # ... and a negative
    scores = torch.randn(300, 20, generator=generator) + 1.5 * targets
    got = multilabel_metrics(scores, targets)
    assert got["mAP"] == pytest.approx(
        average_precision_score(targets.numpy(), scores.numpy(), average="macro"), abs=1e-12
    )
    assert got["mAUC"] == pytest.approx(
        roc_auc_score(targets.numpy(), scores.numpy(), average="macro"), abs=1e-12
    )
    assert 0.5 < got["mAP"] < 0.8 and got["d_prime"] > 1.0  # well above chance (~0.2)


def test_clip_scores_multilabel_summary_is_computed_over_all_clips_at_once():
    generator = torch.Generator().manual_seed(1)
    targets = (torch.rand(40, 5, generator=generator) < 0.3).float()
    targets[0] = 1.0
    scores = torch.randn(40, 5, generator=generator) + targets
    stats = ClipScores()
    for start in range(0, 40, 7):  # batches; ids not in order
        ids = [f"c{i:02d}" for i in range(start, min(start + 7, 40))][::-1]
        stats.append(ids, scores[start : start + 7].flip(0), targets[start : start + 7].flip(0))
    summary = stats.summarize(multilabel=True)
    expected = multilabel_metrics(scores, targets)
    assert summary["clips"] == 40
    for key in ("mAP", "mAUC", "d_prime"):
        assert summary[key] == pytest.approx(expected[key], abs=1e-12)
    # the mean of per-half mAPs differs, which is why ranks gather scores first
    halves = [
        multilabel_metrics(scores[s], targets[s])["mAP"] for s in (slice(0, 20), slice(20, 40))
    ]
    assert abs(sum(halves) / 2 - expected["mAP"]) > 1e-3
    assert "mAP" not in stats.summarize()
