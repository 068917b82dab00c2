"""Benchmark plumbing: FLOP counts, token counts and row bookkeeping."""

import json

import torch

from fastast_plugin import bench


def test_flop_count_of_a_linear_layer_is_exact():
    assert bench.count_gflops(torch.nn.Linear(100, 50), torch.randn(4, 100)) == 2 * 4 * 100 * 50 / 1e9


def test_attention_flops_are_counted_on_every_device():
    q = k = v = torch.randn(2, 3, 10, 8)
    gflops = bench.count_gflops(torch.nn.functional.scaled_dot_product_attention, q, k, v)
    assert gflops == 2 * (2 * 2 * 3 * 10 * 10 * 8) / 1e9


def test_merging_reduces_counted_flops_as_the_token_arithmetic_says():
    enc = bench.ASTEncoder("tiny224", depth=2, input_tdim=128)
    model = bench.ASTClassifier(enc, bench.ASTHead(192, 3)).eval()
    feats = torch.randn(1, 128, 128)
    full = bench.count_gflops(model, feats)
    enc.r = 72  # block 1 keeps 146 tokens for attention, then 74 for its MLP
    merged = bench.count_gflops(model, feats)
    assert merged < full
    mlp_per_token = 2 * 2 * 192 * 768 / 1e9
    # Block 1's MLP and all of block 2 see 72 fewer tokens.
    assert full - merged > 72 * mlp_per_token


def test_cli_sweep_writes_rows_and_plot(tmp_path):
    out = tmp_path / "rows.json"
    plot = tmp_path / "speedup.png"
    rows = bench.main(
        [
            "--model-size", "tiny224", "--frames", "128", "--dtypes", "fp32",
            "--runs", "1", "--batch", "1", "--r", "0", "16", "--keep-ratio", "0.5",
            "--compare-hf", "--json", str(out), "--plot", str(plot),
        ]
    )
    merge_rows = [row for row in rows if row["kind"] == "merge"]
    assert [row["setting"] for row in merge_rows] == ["r=0", "r=16", "keep=0.5"]
    assert merge_rows[0]["speedup"] == 1.0
    assert merge_rows[0]["tokens_per_block"][-1] == 146
    assert merge_rows[1]["tokens_last_block"] == 3  # 146 tokens, r=16, 12 blocks
    assert merge_rows[2]["gflops"] < merge_rows[0]["gflops"]
    hf_rows = [row for row in rows if row["kind"] == "hf_vs_ours"]
    assert len(hf_rows) == 1 and hf_rows[0]["ratio_ours_over_hf"] > 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(rows))
    assert plot.stat().st_size > 0
