"""``bench --features``: batched front-ends against per-clip loops, in one run."""

import json

import pytest
import torch
import torchaudio

from fastast_plugin.evaluation.bench_features import (
    _ast_fbank_loop,
    _feature_rows,
    efficientat_loop,
    main,
)
from fastast_plugin.models.dymn.frontend import DyMNFrontEnd


def test_rows_compare_the_same_clips():
    rows = _feature_rows(batches=[1, 3], seconds=1.5, runs=2, threads=0)
    assert [(row["front_end"], row["batch"]) for row in rows] == [
        ("KaldiFbank", 1),
        ("DyMNFrontEnd", 1),
        ("KaldiFbank", 3),
        ("DyMNFrontEnd", 3),
    ]
    for row in rows:
        assert row["batched_ms"] > 0 and row["loop_ms"] > 0
        assert row["speedup"] == pytest.approx(row["loop_ms"] / row["batched_ms"])
        assert row["best_speedup"] > 0
        # Same numbers on both sides: AST's per-clip fbank within 1e-4;
        # EfficientAT's within fp32's reach at near-silent bands (below).
        assert row["max_abs_diff"] <= (1e-4 if row["front_end"] == "KaldiFbank" else 5e-4)


def test_loop_is_ast_loader():
    wav = torch.randn(1, 16000) + 0.5
    reference = torchaudio.compliance.kaldi.fbank(
        wav - wav.mean(),
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    assert torch.equal(_ast_fbank_loop(wav)[0], reference)


@pytest.mark.parametrize("orig_sample_rate", [16000, 32000])
def test_efficientat_loop_is_the_frontend_clip_by_clip(orig_sample_rate):
    frontend = DyMNFrontEnd(orig_sample_rate=orig_sample_rate).eval()
    wavs = torch.randn(3, orig_sample_rate)
    wavs[1] *= 1e-3  # quiet clip: the log floor matters
    reference = efficientat_loop(wavs, frontend)
    assert reference.shape == (3, 1, 128, frontend.num_frames(orig_sample_rate))
    # The same maths: in float64 the two agree to rounding.
    frontend64 = DyMNFrontEnd(orig_sample_rate=orig_sample_rate).eval().double()
    torch.testing.assert_close(
        frontend64(wavs.double()), efficientat_loop(wavs.double(), frontend64), rtol=0, atol=1e-10
    )
    # In fp32 both sides are up to ~2e-4 from float64 at bands whose power is
    # near the 1e-5 floor (above the Nyquist of 16 kHz input), where the log
    # magnifies the FFT's rounding.
    torch.testing.assert_close(frontend(wavs), reference, rtol=0, atol=5e-4)
    # Clip by clip: each output depends on its own clip only.
    torch.testing.assert_close(efficientat_loop(wavs[1:2], frontend), reference[1:2])


def test_main_prints_and_writes_json(tmp_path, capsys):
    path = tmp_path / "features.json"
    rows = main(["--batches", "2", "--seconds", "0.5", "--runs", "1", "--json", str(path)])
    printed = capsys.readouterr().out
    assert "KaldiFbank" in printed and "DyMNFrontEnd" in printed
    saved = json.loads(path.read_text())
    assert saved["rows"] == rows and saved["args"]["batches"] == [2]


def test_bad_arguments_are_named(capsys):
    with pytest.raises(SystemExit):
        main(["--batches", "0"])
    assert "--batches" in capsys.readouterr().err
