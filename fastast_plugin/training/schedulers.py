"""AST's learning-rate schedule: optional linear warm-up, then step decay from an epoch.

SpeechBrain's schedulers cover warm-up (``LinearWarmupScheduler``, with a
linear decay to zero afterwards) and step decay (``StepScheduler``, from
epoch 0), but not AST's combination, so this module holds one small,
stateless schedule: the learning rate is a pure function of the epoch and of
the optimizer step, which ``AudioClassifierBrain`` sets before every step.
Being stateless, it needs no checkpoint: a resumed run recomputes it from
the recovered epoch counter and ``optimizer_step``.

Authors
 * fastast developers 2026
"""

__all__ = ["WarmupStepDecay"]


class WarmupStepDecay:
    """``lr * warmup(step) * decay_factor ** decays(epoch)``, as AST's ``run.py`` sets it.

    AST builds ``MultiStepLR(milestones=range(start, 1000, step),
    gamma=decay)`` and steps it after every epoch, so epochs ``1..start`` run
    at ``lr``, epoch ``start + 1`` at ``lr * decay``, and so on every
    ``decay_every`` epochs. AST's warm-up (AudioSet recipes) raises the rate
    every 50 steps to ``(step / 1000) * lr``; here it rises linearly at every
    step, ``(step + 1) / warmup_steps``, which avoids AST's first 50 steps
    at rate 0.

    Arguments
    ---------
    lr : float
        Base learning rate.
    warmup_steps : int
        Optimizer steps of linear warm-up (0: none).
    decay_start : int, optional
        AST's ``lrscheduler_start``: the last epoch at the full rate. None
        disables the decay.
    decay_every : int
        AST's ``lrscheduler_step``: epochs between two decays.
    decay_factor : float
        AST's ``lrscheduler_decay``.

    Example
    -------
    >>> sched = WarmupStepDecay(1.0, decay_start=5, decay_factor=0.5)
    >>> [sched(epoch, step=10_000) for epoch in (1, 5, 6, 7)]
    [1.0, 1.0, 0.5, 0.25]
    >>> WarmupStepDecay(1.0, warmup_steps=4)(epoch=1, step=1)
    0.5
    """

    def __init__(
        self,
        lr: float,
        warmup_steps: int = 0,
        decay_start: int = None,
        decay_every: int = 1,
        decay_factor: float = 1.0,
    ):
        if lr <= 0:
            raise ValueError(f"WarmupStepDecay `lr` must be > 0, got {lr}")
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(
                f"WarmupStepDecay `warmup_steps` must be an integer >= 0, got {warmup_steps}"
            )
        if decay_start is not None and decay_start < 0:
            raise ValueError(
                f"WarmupStepDecay `decay_start` must be >= 0 or None, got {decay_start}"
            )
        if int(decay_every) != decay_every or decay_every < 1:
            raise ValueError(
                f"WarmupStepDecay `decay_every` must be an integer >= 1, got {decay_every}"
            )
        if not 0 < decay_factor <= 1:
            raise ValueError(
                f"WarmupStepDecay `decay_factor` must be in (0, 1], got {decay_factor}"
            )
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)
        self.decay_start = decay_start
        self.decay_every = int(decay_every)
        self.decay_factor = float(decay_factor)

    def decays(self, epoch):
        """Number of decays applied in ``epoch`` (counted from 1).

        Arguments
        ---------
        epoch : int
            The epoch being trained.

        Returns
        -------
        int
            Milestones of AST's ``MultiStepLR`` passed before ``epoch``.

        Example
        -------
        >>> sched = WarmupStepDecay(1.0, decay_start=10, decay_every=5, decay_factor=0.5)
        >>> [sched.decays(e) for e in (10, 11, 15, 16, 21)]
        [0, 1, 1, 2, 3]
        """
        if self.decay_start is None or epoch <= self.decay_start:
            return 0
        return (epoch - 1 - self.decay_start) // self.decay_every + 1

    def __call__(self, epoch, step):
        """The learning rate for the next optimizer step.

        Arguments
        ---------
        epoch : int
            The epoch being trained (from 1).
        step : int
            Optimizer steps taken so far in the whole run (from 0).

        Returns
        -------
        float
            The learning rate.
        """
        factor = self.decay_factor ** self.decays(epoch)
        if self.warmup_steps and step < self.warmup_steps:
            factor *= (step + 1) / self.warmup_steps
        return self.lr * factor
