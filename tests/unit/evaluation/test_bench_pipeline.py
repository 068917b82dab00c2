"""bench_pipeline: our exported model and the Hugging Face pipeline side by side."""

import pytest

from fastast_plugin.evaluation import bench_pipeline


def test_padded_r0_agrees_with_the_pipeline_on_every_file(capsys):
    pytest.importorskip("transformers")
    results = bench_pipeline.main(
        [
            "--tiny",
            "--input-tdim",
            "128",
            "--clips",
            "3",
            "--runs",
            "1",
            "--short",
            "0.3",
            "--long",
            "1.2",
        ]
    )
    assert list(results) == ["1.2 s clips", "mixed 0.3-1.2 s clips"]
    for rows in results.values():
        # Same weights, same features, same padding: the same top-1 label for every file.
        assert rows["ours, r = 0, AST padding"]["agreement"] == 1.0
        assert rows["Hugging Face pipeline"]["agreement"] == 1.0
        assert all(row["clips_per_s"] > 0 for row in rows.values())
    assert "| ours, keep 0.85, native length |" in capsys.readouterr().out
