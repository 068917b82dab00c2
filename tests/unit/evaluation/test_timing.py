"""The one timing loop: warm-up, interleaved rounds, medians; FLOP counts; no benchmark import."""

import subprocess
import sys
import time

import torch

from fastast_plugin.evaluation.timing import (
    count_gflops,
    time_interleaved,
    time_side_by_side,
    timed,
)
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead


def test_flop_count_of_a_linear_layer_is_exact():
    assert count_gflops(torch.nn.Linear(100, 50), torch.randn(4, 100)) == 2 * 4 * 100 * 50 / 1e9


def test_attention_flops_are_counted_on_every_device(device):
    q = k = v = torch.randn(2, 3, 10, 8, device=device)
    gflops = count_gflops(torch.nn.functional.scaled_dot_product_attention, q, k, v)
    assert gflops == 2 * (2 * 2 * 3 * 10 * 10 * 8) / 1e9


def test_merging_reduces_counted_flops_as_the_token_arithmetic_says(device):
    enc = ASTEncoder("tiny224", depth=2, input_tdim=128)
    model = ASTClassifier(enc, ASTHead(192, 3)).eval().to(device)
    feats = torch.randn(1, 128, 128, device=device)
    full = count_gflops(model, feats)
    enc.r = 72  # block 1 keeps 146 tokens for attention, then 74 for its MLP
    merged = count_gflops(model, feats)
    assert merged < full
    mlp_per_token = 2 * 2 * 192 * 768 / 1e9
    # Block 1's MLP and all of block 2 see 72 fewer tokens.
    assert full - merged > 72 * mlp_per_token


def test_timed_returns_the_result_and_a_duration():
    seconds, out = timed(torch.add, torch.ones(2), torch.ones(2))
    assert seconds >= 0 and out.tolist() == [2.0, 2.0]


def slow_first_call(seconds):
    """A candidate whose first call only is slow (lazy set-up, caches)."""
    calls = []

    def call(x):
        calls.append(x)
        if len(calls) == 1:
            time.sleep(seconds)
        return len(calls)

    return call, calls


def test_the_first_call_is_an_untimed_warm_up_and_rounds_interleave():
    # bench_pipeline's own loop timed the first call (lazy set-up) as a round.
    order = []
    slow, calls = slow_first_call(0.3)
    candidates = {
        "slow": (lambda x: order.append("slow") or slow(x), "clip", "cpu"),
        "fast": (lambda x: order.append("fast") or 0, "clip", "cpu"),
    }
    timings = time_interleaved(candidates, runs=1)
    assert timings.seconds["slow"][0] < 0.1
    assert timings.outputs == {"slow": 1, "fast": 0}  # the warm-up call's outputs
    assert order == ["slow", "fast", "slow", "fast"] and len(calls) == 2
    slow, _ = slow_first_call(0.3)
    assert time_side_by_side({"slow": slow}, None, runs=1)["slow"] < 0.1


def test_training_code_does_not_load_the_benchmarks():
    # The recipe runs the patch-size sweep after its test; the sweep times
    # with this module, not with the benchmark (and its Hugging Face, DyMN,
    # ONNX imports).
    code = (
        "import sys, fastast_plugin.training.recipe, fastast_plugin.evaluation.sweep\n"
        "print(sorted(m for m in sys.modules if m.startswith('fastast_plugin.evaluation.bench')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
