"""What one call costs: wall-clock time, timed side by side, and FLOPs.

The one timing loop of the package. ``time_interleaved`` gives every
candidate one untimed warm-up call (caches, allocator, lazy set-up), then
calls the candidates in turn, round after round, so that machine noise hits
all of them alike; on CUDA each call is timed between
``torch.cuda.synchronize`` calls (``synchronize``, ``timed``), so queued
kernels count. ``time_side_by_side`` is its median for candidates sharing
one input, under autocast. ``count_gflops`` counts a call's FLOPs.

The benchmarks (``bench``, ``bench_features``, ``bench_pipeline``) and the
patch-size sweep (``sweep``, which recipes run after their test) use it;
it imports nothing of the benchmarks, so training code that reaches the
sweep does not load them.

Authors
 * fastast developers 2026
"""

import contextlib
import math
import statistics
import time
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "Timings",
    "autocast_context",
    "count_gflops",
    "synchronize",
    "time_interleaved",
    "time_side_by_side",
    "timed",
]


def synchronize(device):
    """Wait for queued kernels on ``device`` (a no-op off CUDA).

    Arguments
    ---------
    device : str or torch.device
        Device whose queue to drain.

    Example
    -------
    >>> synchronize("cpu")
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, *args, device="cpu"):
    """Seconds of one call, queued kernels included, and its result.

    Arguments
    ---------
    fn : callable
        Function to run once.
    *args
        Its arguments.
    device : str or torch.device
        Device whose queue is drained before and after the call.

    Returns
    -------
    seconds : float
        Wall-clock time of the call.
    result
        What ``fn`` returned.

    Example
    -------
    >>> seconds, out = timed(torch.ones, 2)
    >>> seconds >= 0, out.tolist()
    (True, [1.0, 1.0])
    """
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args)
    synchronize(device)
    return time.perf_counter() - start, result


def autocast_context(dtype, device):
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing for fp32.

    Arguments
    ---------
    dtype : torch.dtype, optional
        Autocast dtype; None or ``torch.float32`` runs in fp32.
    device : str or torch.device
        Device type for autocast.

    Returns
    -------
    context manager

    Example
    -------
    >>> with autocast_context(torch.bfloat16, "cpu"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


class Timings(NamedTuple):
    """Seconds of every timed call of each candidate, and its warm-up call's output.

    Example
    -------
    >>> Timings({"a": [3.0, 1.0, 2.0]}, {"a": None}).medians()
    {'a': 2.0}
    """

    seconds: dict
    outputs: dict

    def medians(self):
        """Name to the median seconds of its timed calls."""
        return {name: statistics.median(values) for name, values in self.seconds.items()}


def time_interleaved(candidates, runs=5, dtype=None):
    """Time candidates side by side: one untimed warm-up call each, then ``runs`` rounds.

    Every round calls each candidate once, in order, so slow phases of the
    machine hit all of them alike. Calls run under ``torch.no_grad()`` (and
    autocast to ``dtype``); each is timed by ``timed``, synchronised on its
    own device.

    Arguments
    ---------
    candidates : dict
        Name to ``(function, input, device)``; the function is called on
        its input.
    runs : int
        Timed rounds.
    dtype : torch.dtype, optional
        Autocast dtype (None or fp32: none), on each candidate's device.

    Returns
    -------
    Timings
        ``seconds``: name to the ``runs`` timed calls' seconds;
        ``outputs``: name to the warm-up call's output.

    Example
    -------
    >>> timings = time_interleaved({"sum": (torch.sum, torch.ones(3), "cpu")}, runs=2)
    >>> len(timings.seconds["sum"]), timings.outputs["sum"].item()
    (2, 3.0)
    """
    seconds = {name: [] for name in candidates}
    outputs = {}
    with torch.no_grad(), contextlib.ExitStack() as stack:
        for device_type in {torch.device(device).type for _, _, device in candidates.values()}:
            stack.enter_context(autocast_context(dtype, device_type))
        for name, (fn, inputs, device) in candidates.items():
            outputs[name] = timed(fn, inputs, device=device)[1]
        for _ in range(runs):
            for name, (fn, inputs, device) in candidates.items():
                seconds[name].append(timed(fn, inputs, device=device)[0])
    return Timings(seconds, outputs)


def time_side_by_side(candidates, inputs, dtype=None, runs=5, device="cpu"):
    """Median seconds per call of candidates that take the same input (``time_interleaved``).

    Arguments
    ---------
    candidates : dict
        Name to callable taking ``inputs``.
    inputs : object
        What every candidate gets (e.g. a batch on ``device``).
    dtype : torch.dtype, optional
        Autocast dtype (None for fp32).
    runs : int
        Timed rounds; each round calls every candidate once.
    device : str or torch.device
        Device (for synchronisation and autocast).

    Returns
    -------
    dict
        Name to median seconds per call.

    Example
    -------
    >>> times = time_side_by_side({"id": lambda x: x}, torch.ones(1), runs=2)
    >>> sorted(times)
    ['id']
    """
    calls = {name: (fn, inputs, device) for name, fn in candidates.items()}
    return time_interleaved(calls, runs, dtype).medians()


def count_gflops(fn, *args):
    """GFLOPs of one call, counted by ``torch.utils.flop_counter``.

    Arguments
    ---------
    fn : callable
        Function to run once.
    *args
        Its arguments.

    Returns
    -------
    float
        Billions of floating-point operations.

    Example
    -------
    >>> count_gflops(torch.nn.Linear(10, 10), torch.randn(1, 10))
    2e-07
    """
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops() / 1e9


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    """Two matmuls of attention: ``Q K^T`` and ``softmax(.) V``."""
    *batch, queries, head_dim = query_shape
    keys, value_dim = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * queries * keys * (head_dim + value_dim)


# PyTorch's counter knows the CUDA attention kernels but not the CPU one,
# so attention would count as free on the CPU.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops
}
