"""inference.AudioClassifier: exported folders loaded through SpeechBrain's
Pretrained interface, parity with from_pretrained + KaldiFbank and with
transformers, any rate / channels / length, windows, batching, bad input."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin.data.audio import AudioError, load_audio
from fastast_plugin.inference.classifier import AudioClassifier
from fastast_plugin.inference.export import export_checkpoint, export_model
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.pretrained import from_pretrained

MEAN, STD = -4.2677393, 4.5689974


def tiny_classifier(n_classes=4, input_tdim=128, **encoder):
    torch.manual_seed(0)
    model = ASTClassifier(
        ASTEncoder("tiny224", depth=2, input_tdim=input_tdim, fstride=16, tstride=16, **encoder),
        ASTHead(192, n_classes),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture
def exported(tmp_path):
    """``make(multi_label=False, **encoder)``: an exported tiny model folder."""

    def make(multi_label=False, labels=("a", "b", "c", "d"), **encoder):
        folder = tmp_path / f"model_{multi_label}_{len(encoder)}"
        features = KaldiFbank(mean=MEAN, std=STD)
        return export_model(tiny_classifier(**encoder), folder, features, list(labels), multi_label)

    return make


def tone(seconds, rate=16000, freq=440.0, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.05, t.shape)
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def reference_logits(folder, wav):
    """from_pretrained + KaldiFbank on one clip padded to the model's input (AST)."""
    model = from_pretrained(folder)
    features = KaldiFbank(target_length=model.encoder.input_tdim, mean=MEAN, std=STD)
    with torch.no_grad():
        return model(features(torch.as_tensor(wav)[None]))[0]


def test_classify_file_equals_from_pretrained_and_fbank(exported, tmp_path, device):
    folder = exported()
    clf = AudioClassifier.from_hparams(source=folder, run_opts={"device": device})
    sf.write(tmp_path / "x.wav", tone(1.0), 16000)
    wav = load_audio(tmp_path / "x.wav")  # as written: 16-bit PCM
    out_prob, score, index, text_lab = clf.classify_file(tmp_path / "x.wav")
    expected = torch.log_softmax(reference_logits(folder, wav), -1)
    torch.testing.assert_close(out_prob[0].cpu(), expected, atol=1e-4, rtol=1e-4)
    assert int(index) == int(expected.argmax()) and text_lab == [["a", "b", "c", "d"][int(index)]]


def test_hf_folder_exported_matches_transformers(tmp_path, hf_ast):
    transformers = pytest.importorskip("transformers")
    # Original AST files imply timm's LN eps 1e-6 and torch's 1e-5 in the head;
    # the HF model gets the same so that both exports can be compared to it.
    hf = hf_ast.model(layer_norm_eps=1e-6)
    hf.classifier.layernorm.eps = 1e-5
    hub = hf_ast.save(hf, tmp_path / "hf")
    extractor = transformers.ASTFeatureExtractor(
        num_mel_bins=128, max_length=128, mean=MEAN, std=STD
    )
    sf.write(tmp_path / "x.wav", tone(0.9, freq=1000.0), 16000)
    wav = load_audio(tmp_path / "x.wav").numpy()
    with torch.no_grad():
        inputs = extractor(wav, sampling_rate=16000, return_tensors="pt")
        expected = hf(**inputs).logits[0]
    original = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save(hf_ast.to_original(hub, depth=2), original)
    # 64-dim heads cannot be inferred from the shapes of this small model: 4 heads.
    for source, overrides in ((tmp_path / "hf", {}), (original, {"num_heads": 4})):
        out = tmp_path / f"out_{source.name}"
        folder = export_checkpoint(source, out, mean=MEAN, std=STD, **overrides)
        clf = AudioClassifier.from_hparams(source=folder)
        out_prob = clf.classify_file(tmp_path / "x.wav")[0][0]
        torch.testing.assert_close(out_prob, torch.log_softmax(expected, -1), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(reference_logits(folder, wav), expected, atol=1e-4, rtol=1e-4)


def test_stereo_44k_gives_the_labels_of_16k_mono(exported, tmp_path):
    clf = AudioClassifier.from_hparams(source=exported())
    mono = tone(1.0, rate=44100, freq=660.0)
    sf.write(tmp_path / "stereo.wav", np.stack([mono, mono], 1), 44100)
    resampled = torch.from_numpy(mono)
    import torchaudio

    sf.write(
        tmp_path / "mono.wav",
        torchaudio.functional.resample(resampled, 44100, 16000).numpy(),
        16000,
    )
    stereo_out = clf.classify_file(tmp_path / "stereo.wav")
    mono_out = clf.classify_file(tmp_path / "mono.wav")
    assert stereo_out[3] == mono_out[3]
    torch.testing.assert_close(stereo_out[0], mono_out[0], atol=1e-4, rtol=1e-4)


def test_long_file_is_classified_in_windows(exported, tmp_path):
    folder = exported()
    clf = AudioClassifier.from_hparams(source=folder)
    rate, seconds = 16000, 25.0
    sf.write(tmp_path / "long.wav", tone(seconds), rate)
    prediction = clf.predict_file(tmp_path / "long.wav")
    window = clf.window_samples / rate  # 128 frames: 1.285 s
    starts = [w.start for w in prediction.windows]
    assert prediction.windows[0].start == 0.0
    assert prediction.windows[-1].end == pytest.approx(seconds)
    assert all(w.end - w.start == pytest.approx(window) for w in prediction.windows)
    assert np.allclose(np.diff(starts)[:-1], window * clf.window_hop, atol=1 / rate)
    logits = torch.stack([w.scores for w in prediction.windows])
    torch.testing.assert_close(prediction.scores, torch.log_softmax(logits.mean(0), -1))
    wav = load_audio(tmp_path / "long.wav")  # as written: 16-bit PCM
    start, end = (int(round(x * rate)) for x in (starts[3], prediction.windows[3].end))
    torch.testing.assert_close(
        logits[3], reference_logits(folder, wav[start:end].numpy()), atol=1e-4, rtol=1e-4
    )


def test_multi_label_takes_the_max_over_windows_and_a_threshold(exported, tmp_path):
    clf = AudioClassifier.from_hparams(source=exported(multi_label=True))
    sf.write(tmp_path / "long.wav", tone(4.0), 16000)
    prediction = clf.predict_file(tmp_path / "long.wav")
    probs = torch.stack([w.scores for w in prediction.windows])
    torch.testing.assert_close(prediction.scores, probs.max(0).values)
    out = clf.classify_file(tmp_path / "long.wav", threshold=0.0)
    assert sorted(out.index[0].tolist()) == [0, 1, 2, 3]
    top = clf.classify_file(tmp_path / "long.wav", top_k=2)
    assert top.text_lab[0] == [
        ["a", "b", "c", "d"][i] for i in prediction.scores.argsort(descending=True)[:2]
    ]


def test_batches_of_files_equal_files_one_by_one(exported, tmp_path):
    clf = AudioClassifier.from_hparams(source=exported())
    paths = []
    for i, seconds in enumerate([0.5, 1.2, 3.0, 0.8]):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], tone(seconds, freq=300.0 * (i + 1), seed=i), 16000)
    batched = clf.classify_files(paths, batch_size=3, progress=False)
    for path, result in zip(paths, batched):
        alone = clf.predict_file(path)
        assert result.path == str(path) and result.error is None
        torch.testing.assert_close(
            torch.tensor(result.scores[0]), alone.scores.exp().max(), atol=1e-5, rtol=1e-5
        )


def test_native_length_mode_runs_each_clip_at_its_own_length(exported, tmp_path):
    folder = exported(input_tdim=1024)
    clf = AudioClassifier.from_hparams(source=folder)
    clf.set_length_mode("native")
    assert clf.mods.compute_features.target_length is None
    paths = []
    for i, seconds in enumerate([1.0, 2.5, 0.7]):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], tone(seconds, freq=500.0 + 200 * i, seed=i), 16000)
    model = from_pretrained(folder, length_mode="native")
    features = KaldiFbank(mean=MEAN, std=STD)  # the clip's own frames
    batched = clf.classify_files(paths, batch_size=3, top_k=4, progress=False)
    for path, result in zip(paths, batched):
        with torch.no_grad():
            alone = torch.softmax(model(features(load_audio(path)[None]))[0], -1)
        torch.testing.assert_close(
            torch.tensor(result.scores), alone.sort(descending=True).values, atol=1e-4, rtol=1e-4
        )
    clf.set_length_mode("pad")
    assert clf.mods.compute_features.target_length == 1024
    with pytest.raises(ValueError, match="length mode"):
        clf.set_length_mode("crop")


def test_bad_inputs_are_named(exported, tmp_path):
    clf = AudioClassifier.from_hparams(source=exported())
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    for name in ("missing.wav", "notes.txt", "empty.wav"):
        with pytest.raises(AudioError, match=name):
            clf.classify_file(tmp_path / name)
    (tmp_path / "no_yaml").mkdir()
    with pytest.raises(FileNotFoundError, match="no_yaml.*hyperparams.yaml"):
        AudioClassifier.from_hparams(source=tmp_path / "no_yaml")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        AudioClassifier.from_hparams(source=str(tmp_path / "does_not_exist"))


def test_compiled_interface_equals_eager(exported):
    """SpeechBrain's run_opts["compile"]: same outputs, merged and native-length too."""
    folder = exported()
    eager = AudioClassifier.from_hparams(source=folder)
    compiled = AudioClassifier.from_hparams(
        source=folder, run_opts={"compile": True, "compile_module_keys": ["embedding_model"]}
    )
    assert hasattr(compiled.mods.embedding_model, "_orig_mod")
    wavs = torch.from_numpy(np.stack([tone(1.3, seed=i) for i in range(2)]))
    lens = torch.tensor([1.0, 0.5])
    # Native length, clips of two lengths: without merging one masked pass,
    # with merging one pass per length (the full-length one is pad mode's).
    for settings in ({}, {"keep_ratio": 0.8}):
        for clf in (eager, compiled):
            clf.set_merge(**settings)
            clf.set_length_mode("native")
        torch.testing.assert_close(
            compiled.classify_batch(wavs, lens)[0],
            eager.classify_batch(wavs, lens)[0],
            atol=1e-5,
            rtol=1e-5,
        )


def test_int8_interface_is_close_and_keeps_its_knobs(exported):
    folder = exported()
    eager = AudioClassifier.from_hparams(source=folder)
    int8 = AudioClassifier.from_hparams(source=folder).use_int8()
    wavs = torch.from_numpy(np.stack([tone(1.0, freq=300.0 * (i + 1), seed=i) for i in range(4)]))
    for settings in ({}, {"r": 8}):
        eager.set_merge(**settings)
        int8.set_merge(**settings)
        expected, got = eager.classify_batch(wavs)[0], int8.classify_batch(wavs)[0]
        # Quantised, so not equal; close (random weights: 5 % of the range).
        error = (got - expected).abs().max() / expected.abs().max()
        assert 0 < error < 0.05, (settings, float(error))
    compiled = AudioClassifier.from_hparams(source=folder)
    compiled.mods.embedding_model = torch.compile(compiled.mods.embedding_model)
    with pytest.raises(ValueError, match="compile"):
        compiled.use_int8()


class _NoNormalisation(torch.nn.Module):
    """``mean_var_norm`` of SpeechBrain's EncoderClassifier, here a no-op."""

    def forward(self, feats, lengths):
        return feats


def test_encode_batch_follows_speechbrains_encoder_classifier(exported, tmp_path):
    """Same modules in SpeechBrain's EncoderClassifier: same embeddings, same shape contract."""
    from speechbrain.inference.classifiers import EncoderClassifier

    import fastast_plugin

    clf = fastast_plugin.AudioClassifier.from_hparams(source=exported())
    reference = EncoderClassifier(
        modules={**clf.mods, "mean_var_norm": _NoNormalisation()},
        hparams=vars(clf.hparams),
        run_opts={"device": "cpu"},
    )
    wavs = torch.from_numpy(np.stack([tone(1.0, seed=0), tone(1.0, freq=900.0, seed=1)]))
    emb = clf.encode_batch(wavs)
    assert emb.shape == (2, 1, 192)
    torch.testing.assert_close(emb, reference.encode_batch(wavs), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        clf.encode_batch(wavs[0]), reference.encode_batch(wavs[0]), atol=1e-5, rtol=0
    )  # one waveform, as SpeechBrain takes it
    # the embedding is what the classifier reads
    out_prob = clf.classify_batch(wavs)[0]
    torch.testing.assert_close(
        out_prob, torch.log_softmax(clf.mods.classifier(emb).squeeze(1), -1), atol=1e-5, rtol=0
    )


def test_encode_file_averages_the_windows_of_a_long_file(exported, tmp_path):
    clf = AudioClassifier.from_hparams(source=exported())
    wav = tone(3.0)  # longer than the 128-frame input: several windows
    sf.write(str(tmp_path / "long.wav"), wav, 16000, subtype="FLOAT")
    spans = clf.windows(len(wav))
    assert len(spans) > 1
    each = torch.cat([clf.encode_batch(torch.from_numpy(wav[s:e])) for s, e in spans])
    torch.testing.assert_close(
        clf.encode_file(tmp_path / "long.wav"), each.mean(0, keepdim=True), atol=1e-5, rtol=0
    )


def interface_logits(clf, wav):
    """The interface's logits for one clip (no windowing: the clip fits the input)."""
    return clf.predict_batch(torch.as_tensor(wav)[None])[0].windows[0].scores


@pytest.mark.parametrize("strategy", ["SYMLINK", "COPY"])
def test_pretrainer_savedir_with_either_local_strategy(exported, tmp_path, strategy):
    """SpeechBrain stores the weights as <savedir>/model.ckpt: read by content, not name."""
    from speechbrain.utils.fetching import LocalStrategy

    folder = exported(keep_ratio=0.8)
    savedir = tmp_path / f"savedir_{strategy}"
    clf = AudioClassifier.from_hparams(
        source=folder, savedir=savedir, local_strategy=LocalStrategy[strategy]
    )
    assert (savedir / "model.ckpt").is_symlink() == (strategy == "SYMLINK")
    wav = tone(1.0)
    torch.testing.assert_close(
        interface_logits(clf, wav), reference_logits(folder, wav), atol=1e-5, rtol=1e-5
    )


@pytest.fixture
def http_server():
    """``serve(folder)``: the URL of ``folder`` served over HTTP on 127.0.0.1."""
    import functools
    import http.server
    import threading

    servers = []

    def serve(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_hub_style_download_from_a_url(exported, tmp_path, http_server):
    folder = exported()
    url = http_server(folder.parent) + "/" + folder.name
    savedir = tmp_path / "downloaded"
    clf = AudioClassifier.from_hparams(source=url, savedir=savedir)
    assert (savedir / "model.ckpt").is_file() and not (savedir / "model.ckpt").is_symlink()
    wav = tone(1.0, seed=3)
    torch.testing.assert_close(
        interface_logits(clf, wav), reference_logits(folder, wav), atol=1e-5, rtol=1e-5
    )


def test_merge_overrides_in_from_hparams_replace_the_exported_setting(exported):
    """overrides of r (top-level or in embedding_model) replace an exported keep_ratio."""
    folder = exported(keep_ratio=0.5)
    expected = from_pretrained(folder, r=8)
    assert expected.encoder.keep_ratio is None  # the reference itself is a plain r = 8 model
    wav = tone(1.0, seed=4)
    features = KaldiFbank(target_length=128, mean=MEAN, std=STD)
    with torch.no_grad():
        want = expected(features(torch.as_tensor(wav)[None]))[0]
    for overrides in ({"r": 8}, {"embedding_model": {"r": 8}}):
        clf = AudioClassifier.from_hparams(source=folder, overrides=overrides)
        encoder = clf.mods.embedding_model
        assert (encoder.r, encoder.keep_ratio) == (8, None), overrides
        torch.testing.assert_close(interface_logits(clf, wav), want, atol=1e-5, rtol=1e-5)


def test_a_folder_exported_by_the_flat_package_still_loads():
    """tests/fixtures/export_v2 was written by ``fastast export`` before the move into
    subpackages: its hyperparams.yaml names the old paths (fastast_plugin.ast.ASTEncoder,
    fastast_plugin.inference.load_weights, ...). Both loaders give the logits it was written with."""
    import json

    fixtures = Path(__file__).parents[2] / "fixtures"
    folder = fixtures / "export_v2"
    assert "!new:fastast_plugin.ast.ASTEncoder" in (folder / "hyperparams.yaml").read_text()
    expected = torch.tensor(json.loads((fixtures / "export_v2_logits.json").read_text())["logits"])
    wav, _ = sf.read(str(fixtures / "export_v2_clip.wav"), dtype="float32")
    clf = AudioClassifier.from_hparams(source=folder)
    torch.testing.assert_close(interface_logits(clf, wav), expected, atol=1e-5, rtol=1e-5)
    model = from_pretrained(folder)
    assert model.encoder.keep_ratio == 0.9 and model.labels == ["dog", "cat", "bird"]
    with torch.no_grad():
        direct = model(clf.mods.compute_features(torch.from_numpy(wav)[None]))[0]
    torch.testing.assert_close(direct, expected, atol=1e-5, rtol=1e-5)
