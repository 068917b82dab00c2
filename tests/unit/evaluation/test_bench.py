"""Benchmark plumbing: token counts, back ends and row bookkeeping (timing and FLOPs: test_timing)."""

import json

import torch

from fastast_plugin.cli_options import PRECISIONS
from fastast_plugin.evaluation import bench


def test_cli_sweep_writes_rows_and_plot(tmp_path):
    out = tmp_path / "rows.json"
    plot = tmp_path / "speedup.png"
    rows = bench.main(
        [
            "--model-size",
            "tiny224",
            "--frames",
            "128",
            "--precision",
            "fp32",
            "--runs",
            "1",
            "--batch-size",
            "1",
            "--r",
            "0",
            "16",
            "--keep-ratio",
            "0.5",
            "--compare-hf",
            "--json",
            str(out),
            "--plot",
            str(plot),
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


def test_precision_names_map_through_speechbrain_and_fp32_is_plain():
    from speechbrain.utils.autocast import AMPConfig

    from fastast_plugin.evaluation.timing import autocast_context

    assert set(PRECISIONS) == {"fp32", "bf16", "fp16"}
    with autocast_context(AMPConfig.from_name("fp32").dtype, "cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with autocast_context(AMPConfig.from_name("bf16").dtype, "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_settings_are_labelled_with_tome_schedules():
    assert bench._label({"r": (16, -1.0)}) == "r=(16, -1)"


def test_gpu_table_preset_is_the_issue_s_table():
    args = bench._parse_args(["--gpu-table", "--json", "out.json"])
    assert args.device == "cuda" and args.batch_size == [32] and args.frames == [1024]
    assert args.model_size == "base384" and args.precision == ["bf16", "fp16"]
    assert args.r == [0, 16, (16, -1.0)] and args.keep_ratio == [0.85, 0.8]
    assert args.compare_hf and args.features and args.json == "out.json"
    # Later values override the preset.
    assert bench._parse_args(["--gpu-table", "--batch-size", "8"]).batch_size == [8]


def test_gpu_table_runs_end_to_end_at_a_tiny_size(tmp_path):
    """The preset's whole path (HF comparison, every setting, features), on
    the CPU at a tiny size: the GPU run differs only by device and size."""
    out = tmp_path / "table.json"
    rows = bench.main(
        [
            "--gpu-table",
            "--device",
            "cpu",
            "--model-size",
            "tiny224",
            "--frames",
            "64",
            "--batch-size",
            "2",
            "--runs",
            "1",
            "--precision",
            "bf16",
            "--batches",
            "1",
            "--seconds",
            "0.5",
            "--json",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == rows
    kinds = [row["kind"] for row in rows]
    assert kinds == ["hf_vs_ours"] + ["merge"] * 5 + ["features"] * 2
    settings = [row["setting"] for row in rows if row["kind"] == "merge"]
    assert settings == ["r=0", "r=16", "r=(16, -1)", "keep=0.85", "keep=0.8"]
    assert all(row["dtype"] == "bf16" for row in rows if "dtype" in row)


def test_unknown_arguments_are_refused_unless_for_the_features_benchmark():
    import pytest

    with pytest.raises(SystemExit):
        bench._parse_args(["--no-such-option"])
    args = bench._parse_args(["--features", "--batches", "1", "8"])
    assert args.feature_argv == ["--batches", "1", "8"]


def test_onnx_and_int8_back_ends_are_cpu_only(tmp_path):
    import pytest

    enc = bench.ASTEncoder("tiny224", depth=1, input_tdim=64)
    model = bench.ASTClassifier(enc, bench.ASTHead(192, 3)).eval()
    with pytest.raises(ValueError, match="CPU only"):
        bench._Backends(model, [{"r": 0}], ["eager", "int8"], "cuda", str(tmp_path))


def test_every_back_end_computes_the_model_at_its_setting(tmp_path):
    """Same logits from eager, compiled, ONNX Runtime (and int8 close) per setting."""
    import importlib.util

    import pytest

    names = ["eager", "compiled", "int8"]
    if all(importlib.util.find_spec(n) for n in ("onnx", "onnxscript", "onnxruntime")):
        names += ["onnx", "onnx-int8"]
    torch.manual_seed(0)
    enc = bench.ASTEncoder("tiny224", depth=2, input_tdim=64)
    model = bench.ASTClassifier(enc, bench.ASTHead(192, 3)).eval()
    settings = [{"r": 0}, {"keep_ratio": 0.7}]
    backends = bench._Backends(model, settings, names, "cpu", str(tmp_path))
    calls = backends.candidates(None)
    assert list(calls) == [(n, s) for n in names for s in ("r=0", "keep=0.7")]
    feats = torch.randn(2, 64, 128)
    with torch.no_grad():
        for label, setting in zip(("r=0", "keep=0.7"), settings):
            model.encoder.set_merge(**setting)
            expected = model(feats)
            for name in names:
                got = calls[name, label](feats)
                # Random weights: int8 within 15 % (the trained-model bound is in test_quantize).
                tolerance = 0.15 * expected.abs().max() if "int8" in name else 1e-4
                assert (got - expected).abs().max() <= tolerance, (name, label)
    model.encoder.set_merge()
    with torch.no_grad():
        unmerged = model(feats)
    assert (
        calls["onnx" if "onnx" in names else "compiled", "keep=0.7"](feats) - unmerged
    ).abs().max() > 1e-3
    # bf16/fp16 tables keep only eager and compiled (ONNX and int8 ignore autocast).
    assert {n for n, _ in backends.candidates(torch.bfloat16)} == {"eager", "compiled"}
    pytest.importorskip("onnxruntime")


def test_peak_memory_is_measured_on_cuda_only(device):
    import pytest

    assert bench._peak_memory_mib(lambda x: x * 2, torch.ones(4), None, "cpu") is None
    if not device.startswith("cuda"):
        pytest.skip("peak memory is a CUDA measurement (run with --device cuda)")
    x = torch.ones(1024, 1024, device=device)  # 4 MiB
    peak = bench._peak_memory_mib(lambda t: t * 2, x, None, device)
    assert peak >= 8  # input + output
