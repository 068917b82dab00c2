"""Patch-size sweeps: evaluation at every patch size, the patch size x r benchmark,
tables and the cross-fold summary.

Authors
 * fastast developers 2026
"""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin import cli
from fastast_plugin.evaluation.sweep import (
    EVAL_COLUMNS,
    benchmark_patch_sizes,
    evaluate_patch_sizes,
    manifest_clips,
    product_table,
    summarize_patch_sweeps,
    write_table,
)
from fastast_plugin.models.ast import ASTClassifier, ASTHead


def test_sweep_writes_csv_markdown_and_plot(tmp_path, flexi_encoder, device):
    rng = np.random.default_rng(0)
    labels = ["hum", "hiss"]
    manifest = {}
    for i in range(5):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, rng.standard_normal(8000 if i % 2 else 12000) * 0.1, 16000)
        manifest[f"clip{i}"] = {"wav": "{data_root}/" + path.name, "label": labels[i % 2]}
    (tmp_path / "test.json").write_text(json.dumps(manifest))
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    encoder = flexi_encoder(depth=1, tdim=64, embed_dim=64, num_heads=1)
    model = ASTClassifier(encoder, ASTHead(64, 2))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    out = tmp_path / "out"
    argv = [
        "--checkpoint",
        str(tmp_path / "model.pth"),
        "--manifest",
        str(tmp_path / "test.json"),
        "--labels",
        str(tmp_path / "labels.json"),
        "--data-root",
        str(tmp_path),
        "--out",
        str(out),
        "--patch-sizes",
        "16",
        "32",
        "16x8",
        "--batch-size",
        "2",
        "--device",
        device,
    ]
    rows = cli.run(["sweep", *argv])
    with open(out / "flexi_eval.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["patch_size"] for r in table] == ["16", "32", "16x8"]
    assert [int(r["tokens"]) for r in table] == [2 + 8 * 4, 2 + 4 * 2, 2 + 8 * 8]
    assert all(r["clips"] == "5" and 0 <= float(r["acc"]) <= 1 for r in table)
    assert all(float(r["clips_per_s"]) > 0 and float(r["gflops_per_clip"]) > 0 for r in table)
    assert rows[0]["acc"] == float(table[0]["acc"])
    md = (out / "flexi_eval.md").read_text().splitlines()
    assert md[0].startswith("| patch_size |") and len(md) == 5
    assert (out / "flexi_eval.png").stat().st_size > 0

    manifest["clip0"]["wav"] = str(tmp_path / "missing.wav")
    (tmp_path / "test.json").write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="clip 'clip0' not found at .*missing.wav"):
        cli.run(["sweep", *argv])


def test_benchmark_product_table(flexi_encoder, device):
    model = ASTClassifier(flexi_encoder(depth=2, tdim=128), ASTHead(32, 2)).eval().to(device)
    feats = torch.randn(2, 128, 128).to(device)
    rows = benchmark_patch_sizes(model, feats, [16, 32], [0, 4], runs=1, device=device)
    assert [(r["patch_size"], r["r"]) for r in rows] == [("16", 0), ("16", 4), ("32", 0), ("32", 4)]
    assert [r["tokens_last_block"] for r in rows] == [66, 58, 18, 10]
    assert rows[1]["gflops_per_clip"] < rows[0]["gflops_per_clip"]
    assert rows[3]["gflops_per_clip"] < rows[2]["gflops_per_clip"]
    table = product_table(rows).splitlines()
    assert table[0] == "| patch \\ r | 0 | 4 |" and len(table) == 4
    assert model.encoder.patch_size == (16, 16) and model.encoder.r == 0  # restored


def test_evaluation_metrics_and_restored_patch_size(flexi_encoder, device):
    model = ASTClassifier(flexi_encoder(depth=1, tdim=64), ASTHead(32, 3)).eval()
    targets = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 1.0], [0, 0, 1.0]])
    batches = [
        ([None] * 2, torch.randn(2, 64, 128), targets[:2]),
        ([None] * 2, torch.randn(2, 64, 128), targets[2:]),
    ]
    rows = evaluate_patch_sizes(model, batches, [16, (16, 32)], device=device)
    assert [r["patch_size"] for r in rows] == ["16", "16x32"]
    assert all(r["clips"] == 4 and 0 <= r["mAP"] <= 1 for r in rows)
    assert model.encoder.patch_size == (16, 16)
    with pytest.raises(ValueError, match="no batches"):
        evaluate_patch_sizes(model, [], [16])


def test_manifest_clips(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(160), 16000)
    (tmp_path / "m.json").write_text(
        json.dumps({"a": {"wav": str(tmp_path / "a.wav"), "label": ["dog", "cat"]}})
    )
    assert manifest_clips(str(tmp_path / "m.json"))[0].labels == ["dog", "cat"]
    (tmp_path / "bad.json").write_text(json.dumps({"a": {"wav": "a.wav"}}))
    with pytest.raises(ValueError, match="entry 'a' must hold 'wav' and 'label'"):
        manifest_clips(str(tmp_path / "bad.json"))
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ValueError, match="holds no clips"):
        manifest_clips(str(tmp_path / "empty.json"))


def test_summary_of_folds_keeps_the_first_files_order(tmp_path):
    files = {}
    for fold, accs in ((1, (0.5, 0.9)), (2, (0.7, 0.8))):
        rows = [
            {"patch_size": size, "tokens": 10, "acc": acc, "mAP": acc, "clips_per_s": 1.0}
            for size, acc in zip(("32", "16"), accs)
        ]
        files[f"fold_{fold}"] = write_table(rows, EVAL_COLUMNS, str(tmp_path / f"f{fold}"))[0]
    rows = summarize_patch_sweeps(files, str(tmp_path / "cv"))
    assert [r["patch_size"] for r in rows] == ["32", "16"]
    assert rows[0]["acc"] == pytest.approx(0.6) and rows[1]["folds"] == 2
    assert (tmp_path / "cv.png").stat().st_size > 0
    with pytest.raises(FileNotFoundError, match="no sweep for fold_3"):
        summarize_patch_sweeps({"fold_3": str(tmp_path / "f3.csv")}, str(tmp_path / "x"))


def test_sweep_reads_audioset_class_index_by_name_or_mid(tmp_path, flexi_encoder):
    """``fastast sweep --labels class_labels_indices.csv``: display names or mids, no header class."""
    rng = np.random.default_rng(0)
    classes = [("/m/09x0r", "Speech"), ("/m/0bt9lr", "Dog")]
    by_name, by_mid = {}, {}
    for i in range(4):
        sf.write(tmp_path / f"c{i}.wav", rng.standard_normal(8000) * 0.1, 16000)
        mid, name = classes[i % 2]
        by_name[f"c{i}"] = {"wav": str(tmp_path / f"c{i}.wav"), "label": [name]}
        by_mid[f"c{i}"] = {"wav": str(tmp_path / f"c{i}.wav"), "label": mid}
    (tmp_path / "names.json").write_text(json.dumps(by_name))
    (tmp_path / "mids.json").write_text(json.dumps(by_mid))
    (tmp_path / "names.txt").write_text("Speech\nDog\n")
    (tmp_path / "class_labels_indices.csv").write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0bt9lr,"Dog"\n'
    )
    model = ASTClassifier(
        flexi_encoder(depth=1, tdim=64, embed_dim=64, num_heads=1), ASTHead(64, 2)
    )
    torch.save(model.state_dict(), tmp_path / "model.pth")

    def sweep(manifest, labels):
        argv = ["--checkpoint", str(tmp_path / "model.pth"), "--manifest", str(tmp_path / manifest)]
        argv += ["--labels", str(tmp_path / labels), "--out", str(tmp_path / "out")]
        rows = cli.run(["sweep", *argv, "--patch-sizes", "16", "32", "--batch-size", "2"])
        return [(row["patch_size"], row["acc"], row["mAP"], row["clips"]) for row in rows]

    reference = sweep("names.json", "names.txt")
    assert sweep("names.json", "class_labels_indices.csv") == reference
    assert sweep("mids.json", "class_labels_indices.csv") == reference
