"""fastast classify / fastast export from the command line: folders, bad
files, JSON lines, exit status, run-time knobs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from fastast_plugin import cli
from fastast_plugin.inference.classify import _audio_files
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead


def write_checkpoint(path, n_classes=3):
    torch.manual_seed(0)
    model = ASTClassifier(
        ASTEncoder("tiny224", depth=1, input_tdim=128, fstride=16, tstride=16),
        ASTHead(192, n_classes),
    )
    torch.save(model.state_dict(), path)
    return path


def export_tiny(tmp_path, *flags):
    """``fastast export`` of ``write_checkpoint``'s model (single-label, 128 frames)."""
    model = tmp_path / "model"
    cli.run(
        [
            "export",
            str(write_checkpoint(tmp_path / "m.pth")),
            str(model),
            "--input-tdim",
            "128",
            "--single-label",
            *flags,
        ]
    )
    return model


def test_export_then_classify_a_folder_with_a_bad_file(tmp_path, capsys):
    source = write_checkpoint(tmp_path / "speechcommands_16_16_0.9.pth")
    labels = tmp_path / "labels.txt"
    labels.write_text("dog\ncat\nbird\n")
    model = tmp_path / "model"
    cli.run(
        [
            "export",
            str(source),
            str(model),
            "--labels",
            str(labels),
            "--single-label",
            "--input-tdim",
            "128",
            "--keep-ratio",
            "0.9",
        ]
    )
    config = json.loads((model / "fastast_config.json").read_text())
    assert config["encoder"]["keep_ratio"] == 0.9 and config["labels"] == ["dog", "cat", "bird"]

    clips = tmp_path / "clips" / "sub"
    clips.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(clips / "short.wav", rng.normal(0, 0.1, 8000), 16000)
    sf.write(clips / "long_44k.flac", rng.normal(0, 0.1, (44100 * 4, 2)), 44100)
    (clips / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    (clips / "readme.txt").write_text("not collected from folders")
    capsys.readouterr()
    status = cli.main(["classify", str(model), str(tmp_path / "clips"), "--json", "--top-k", "2"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 1
    assert [r["path"].rsplit("/", 1)[1] for r in records] == [
        "broken.wav",
        "long_44k.flac",
        "short.wav",
    ]
    assert "broken.wav" in records[0]["error"] and "broken.wav" in err
    assert all(
        len(r["labels"]) == 2 and set(r["labels"]) <= {"dog", "cat", "bird"} for r in records[1:]
    )
    assert len(records[1]["windows"]) > 1 and "windows" not in records[2]
    assert records[1]["windows"][-1]["end"] == 4.0
    assert {w["label"] for w in records[1]["windows"]} <= {"dog", "cat", "bird"}


def test_text_output_and_knobs(tmp_path, capsys):
    model = export_tiny(tmp_path)
    sf.write(tmp_path / "a.wav", np.random.default_rng(1).normal(0, 0.1, 16000), 16000)
    capsys.readouterr()
    status = cli.main(
        [
            "classify",
            str(model),
            str(tmp_path / "a.wav"),
            "--r",
            "8",
            "--length-mode",
            "native",
            "--top-k",
            "1",
        ]
    )
    path, tags = capsys.readouterr().out.strip().split("\t")
    assert status == 0 and path.endswith("a.wav") and tags.count("(") == 1


def test_fastast_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "fastast_plugin.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("classify", "export", "bench", "visualize", "sweep", "precompute"):
        assert command in result.stdout


def test_audio_files_takes_explicit_files_as_given(tmp_path):
    (tmp_path / "x.WAV").write_bytes(b"")
    (tmp_path / "y.dat").write_bytes(b"")
    assert _audio_files([tmp_path]) == [tmp_path / "x.WAV"]
    assert _audio_files([tmp_path / "y.dat"]) == [tmp_path / "y.dat"]


def test_export_onnx_runs_in_the_interface(tmp_path, capsys):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason=f"the onnx extra is not installed ({module})")
    from fastast_plugin.inference.classifier import AudioClassifier

    model = export_tiny(tmp_path, "--keep-ratio", "0.9", "--onnx", "--int8")
    wav = torch.from_numpy(np.random.default_rng(2).normal(0, 0.1, 12000).astype(np.float32))
    eager = AudioClassifier.from_hparams(source=model).classify_batch(wav[None])[0]
    onnx = AudioClassifier.from_hparams(source=model).use_onnx(model / "model.onnx")
    torch.testing.assert_close(onnx.classify_batch(wav[None])[0], eager, atol=1e-4, rtol=1e-4)
    int8 = AudioClassifier.from_hparams(source=model).use_onnx(model / "model.int8.onnx")
    error = (int8.classify_batch(wav[None])[0] - eager).abs().max() / eager.abs().max()
    assert 0 < error < 0.05  # quantised: close, not equal

    # The same files from the command line.
    sf.write(tmp_path / "a.wav", wav.numpy(), 16000)
    capsys.readouterr()
    scores = {}
    for backend in (
        [],
        ["--onnx", str(model / "model.onnx")],
        ["--onnx", str(model / "model.int8.onnx")],
    ):
        assert cli.main(["classify", str(model), str(tmp_path / "a.wav"), "--json", *backend]) == 0
        scores[len(backend) and backend[1]] = json.loads(capsys.readouterr().out)["scores"]
    assert scores[str(model / "model.onnx")] == pytest.approx(scores[0], abs=1e-4)
    assert scores[str(model / "model.int8.onnx")] == pytest.approx(scores[0], abs=0.05)


def test_int8_and_bf16_from_the_command_line(tmp_path, capsys):
    model = export_tiny(tmp_path)
    sf.write(tmp_path / "a.wav", np.random.default_rng(3).normal(0, 0.1, 16000), 16000)
    capsys.readouterr()
    scores = []
    for backend in ([], ["--int8"], ["--precision", "bf16"]):
        assert (
            cli.main(
                ["classify", str(model), str(tmp_path / "a.wav"), "--json", "--r", "8", *backend]
            )
            == 0
        )
        scores.append(json.loads(capsys.readouterr().out)["scores"])
        # the interface's autocast context is left as it was entered
        assert not torch.is_autocast_enabled("cpu")
    for other in scores[1:]:  # int8 and bf16: close to fp32, not equal
        assert other != scores[0] and other == pytest.approx(scores[0], abs=0.05)


def test_back_end_flags_that_cannot_apply_are_refused(tmp_path, capsys):
    model, wav = str(tmp_path / "model"), str(tmp_path / "a.wav")
    for argv, message in (
        (
            ["classify", model, wav, "--onnx", "m.onnx", "--keep-ratio", "0.9"],
            "--keep-ratio cannot",
        ),
        (["classify", model, wav, "--int8", "--compile"], "not allowed with"),
        (["classify", model, wav, "--int8", "--device", "cuda"], "run on the CPU"),
        (["classify", model, wav, "--onnx", "m.onnx", "--precision", "bf16"], "own precision"),
        (["export", "m.pth", model, "--int8"], "needs --onnx"),
    ):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert message in capsys.readouterr().err, argv


@pytest.mark.parametrize("mode, min_samples", [("pad", 400), ("native", 2800)])
def test_a_folder_with_tiny_files_classifies_them_padded_and_reports_broken_ones(
    tmp_path, capsys, mode, min_samples
):
    from fastast_plugin.data.audio import load_audio
    from fastast_plugin.inference.classifier import AudioClassifier

    model = export_tiny(tmp_path)
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(2)
    sf.write(folder / "a_click.wav", rng.normal(0, 0.3, 304), 16000)  # 19 ms
    sf.write(folder / "b_blip.wav", rng.normal(0, 0.3, 2000), 16000)  # 125 ms
    sf.write(folder / "c_normal.wav", rng.normal(0, 0.1, 16000), 16000)
    sf.write(folder / "d_empty.wav", np.zeros(0), 16000)
    (folder / "e_corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    capsys.readouterr()
    status = cli.main(["classify", str(model), str(folder), "--json", "--length-mode", mode])
    out, err = capsys.readouterr()
    records = {
        json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in out.splitlines()
    }
    assert status == 1 and "2 of 5 files could not be classified" in err
    assert set(records) == {
        "a_click.wav",
        "b_blip.wav",
        "c_normal.wav",
        "d_empty.wav",
        "e_corrupt.wav",
    }
    assert "empty" in records["d_empty.wav"]["error"] and "error" in records["e_corrupt.wav"]

    # each file's scores are those of the file alone, padded with silence to the minimum
    classifier = AudioClassifier.from_hparams(source=model)
    classifier.set_length_mode(mode)
    assert classifier.min_samples == min_samples
    for name in ("a_click.wav", "b_blip.wav", "c_normal.wav"):
        wav = load_audio(folder / name, 16000)
        padded = F.pad(wav, (0, max(0, min_samples - len(wav))))
        log_probs = classifier.classify_batch(padded[None])[0][0]
        best = torch.argsort(log_probs, descending=True)[:3]
        expected = [classifier.hparams.label_encoder.ind2lab[int(i)] for i in best]
        assert records[name]["labels"] == expected
        np.testing.assert_allclose(records[name]["scores"], log_probs[best].exp(), atol=1e-5)


def test_classify_with_a_savedir(tmp_path, capsys):
    """--savedir: SpeechBrain's Pretrainer collects the weights as model.ckpt, read by content."""
    model = export_tiny(tmp_path)
    sf.write(tmp_path / "a.wav", np.random.default_rng(2).normal(0, 0.1, 16000), 16000)
    capsys.readouterr()
    plain = cli.main(["classify", str(model), str(tmp_path / "a.wav"), "--json"])
    expected = capsys.readouterr().out
    status = cli.main(
        [
            "classify",
            str(model),
            str(tmp_path / "a.wav"),
            "--json",
            "--savedir",
            str(tmp_path / "cache"),
        ]
    )
    assert (status, plain) == (0, 0) and capsys.readouterr().out == expected
    assert (tmp_path / "cache" / "model.ckpt").exists()
