"""FlexiAST training: one random patch size per batch, and the patch sizes FlexiAST uses.

The weights side of flexible patches (PI-resize of the kernel, resampling
of the positional grid, the patch-size parser) is
``fastast_plugin.weights.resize``; ``ASTEncoder(flexible=...)`` applies it.

Authors
 * fastast developers 2026
"""

import json
import math
import random
from collections.abc import Sequence

from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from fastast_plugin.weights.resize import Size, parse_patch_size

__all__ = ["EVAL_PATCH_SIZES", "PatchSizeSampler"]

# FlexiAST's training set (its VGGSound script; FlexiViT's list plus 32).
_FLEXI_PATCH_SIZES = (48, 40, 32, 30, 24, 20, 16, 15, 12, 10, 8)
# The sizes FlexiAST's measure_flexibility.py evaluates.
EVAL_PATCH_SIZES = (8, 10, 12, 16, 20, 24, 30, 32, 40, 48)


# ----------------------------------------------------------------------
# Training: one random patch size per batch
# ----------------------------------------------------------------------
@register_checkpoint_hooks
class PatchSizeSampler:
    """Draws the patch size of each training batch (FlexiAST training).

    Call it once per training batch and pass the result to
    ``encoder.set_patch_size``; evaluate with a fixed size. The sampler owns
    its random generator, seeded by ``seed``: every DDP rank built with the
    same seed draws the same size at the same step, so the ranks do the same
    amount of work per step and none waits at the gradient all-reduce for a
    rank that drew a small patch (many tokens). Correctness does not depend
    on it: the one stored kernel is used at every size, so DDP sees no
    unused parameter either way; pass ``seed + rank`` for per-rank sizes.
    The generator state is saved and restored by SpeechBrain's
    ``Checkpointer`` (list the sampler among its ``recoverables``).

    Arguments
    ---------
    sizes : sequence
        Patch sizes: ints (square, or applied to the flexible axes of a
        time-only / frequency-only encoder) or ``(freq, time)`` pairs.
    weights : sequence of float, optional
        Relative probabilities, one per size (default uniform, as FlexiAST).
    seed : int
        Seed of the sampler's own generator.

    Example
    -------
    >>> sampler = PatchSizeSampler([8, 16, (16, 32)], weights=[1, 0, 1], seed=0)
    >>> [sampler() for _ in range(4)]
    [(16, 32), (16, 32), 8, 8]
    """

    def __init__(
        self,
        sizes: Sequence[Size] = _FLEXI_PATCH_SIZES,
        weights: Sequence[float] | None = None,
        seed: int = 1337,
    ):
        sizes = list(sizes)
        if not sizes:
            raise ValueError("sizes must hold at least one patch size, got []")
        self.sizes = [parse_patch_size(s, "sizes", as_pair=False) for s in sizes]
        self.weights = None if weights is None else self._check_weights(weights)
        self.seed = seed
        self._rng = random.Random(seed)

    def _check_weights(self, weights):
        weights = [float(w) for w in weights]
        if len(weights) != len(self.sizes):
            raise ValueError(
                f"weights has {len(weights)} values for {len(self.sizes)} sizes; "
                "give one weight per size"
            )
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights}")
        return weights

    def __call__(self):
        """Draw one patch size (an int or a ``(freq, time)`` tuple)."""
        return self._rng.choices(self.sizes, weights=self.weights)[0]

    def __repr__(self):
        return f"PatchSizeSampler(sizes={self.sizes}, weights={self.weights}, seed={self.seed})"

    def state_dict(self):
        """The generator state, JSON-serialisable."""
        version, state, gauss = self._rng.getstate()
        return {"version": version, "state": list(state), "gauss": gauss}

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`."""
        self._rng.setstate((state["version"], tuple(state["state"]), state["gauss"]))

    @mark_as_saver
    def _save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.state_dict(), f)

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        del end_of_epoch  # the state is the same either way
        with open(path, encoding="utf-8") as f:
            self.load_state_dict(json.load(f))
