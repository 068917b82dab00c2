"""Unit tests for fastast_plugin.training.schedulers (AST's warm-up and step decay).

Authors
 * fastast developers 2026
"""

import pytest
import torch

from fastast_plugin.training.schedulers import WarmupStepDecay


@pytest.mark.parametrize("start,every,decay", [(5, 1, 0.85), (2, 1, 0.5), (10, 5, 0.5)])
def test_step_decay_equals_ast_multisteplr(start, every, decay):
    """AST: MultiStepLR(range(start, 1000, step), gamma) stepped after every epoch."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    reference = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, list(range(start, 1000, every)), gamma=decay
    )
    ours = WarmupStepDecay(1.0, decay_start=start, decay_every=every, decay_factor=decay)
    for epoch in range(1, 30):
        assert ours(epoch, step=10**6) == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()


def test_warmup_is_linear_per_step():
    schedule = WarmupStepDecay(2.0, warmup_steps=10)
    assert [schedule(1, s) for s in (0, 4, 9, 10, 500)] == pytest.approx([0.2, 1.0, 2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="decay_factor"):
        WarmupStepDecay(1.0, decay_factor=1.5)
