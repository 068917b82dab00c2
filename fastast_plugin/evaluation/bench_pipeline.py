"""End-to-end folder classification: our exported model vs the Hugging Face pipeline.

Both sides get the same files and the same base384 AST weights (a random
``ASTForAudioClassification`` written as a Hugging Face folder, and that
folder exported with ``fastast export``). Each candidate decodes every file
with soundfile, resamples it, computes features and runs the model, one file
at a time; candidates are timed round-robin in one process after one
untimed warm-up pass each (median of the rounds,
``fastast_plugin.evaluation.timing``). Folders: clips of exactly ``--long`` seconds, and clips of uniform
random length between ``--short`` and ``--long`` seconds.

Candidates: ``transformers.pipeline("audio-classification")``; ours at r = 0
with AST's padding (``length_mode="pad"``); ours with each clip at its own
length (``"native"``); ours native with ``keep_ratio`` 0.85. The table gives
clips/s, the speed-up over the pipeline and how often the top-1 label agrees
with the pipeline's.

``python -m fastast_plugin.evaluation.bench_pipeline --clips 8 --runs 2``

Authors
 * fastast developers 2026
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.evaluation.timing import time_interleaved
from fastast_plugin.inference.classifier import AudioClassifier
from fastast_plugin.inference.export import export_checkpoint
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD

__all__ = ["main"]

_SAMPLE_RATE = 16000


def _write_clips(folder, durations, seed=0):
    """Noise-and-tone clips of the given durations (seconds) as 16 kHz wav files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, seconds in enumerate(durations):
        t = np.arange(int(seconds * _SAMPLE_RATE)) / _SAMPLE_RATE
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + rng.normal(0, 0.05, t.shape)
        paths.append(folder / f"clip{i:03d}.wav")
        sf.write(paths[-1], wav.astype(np.float32), _SAMPLE_RATE)
    return paths


# A 2-block, 192-wide AST (DeiT-tiny's width): for tests of this benchmark.
_TINY = {
    "hidden_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 768,
}


def _hf_model_folder(folder, input_tdim, tiny=False, seed=0):
    """A random ``ASTForAudioClassification`` (base384, or ``_TINY``) + its feature extractor, saved."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.ASTConfig(
        max_length=input_tdim, num_labels=527, **(_TINY if tiny else {})
    )
    model = transformers.ASTForAudioClassification(config).eval()
    model.save_pretrained(folder)
    extractor = transformers.ASTFeatureExtractor(
        max_length=input_tdim, mean=AUDIOSET_MEAN, std=AUDIOSET_STD
    )
    extractor.save_pretrained(folder)
    return folder


def _hf_candidate(folder):
    """Top-1 label index of a file through ``transformers.pipeline``."""
    import transformers

    pipe = transformers.pipeline("audio-classification", model=str(folder), device=-1, top_k=1)
    label2id = pipe.model.config.label2id

    def classify(path):
        wav = load_audio(path, _SAMPLE_RATE).numpy()
        return label2id[pipe({"raw": wav, "sampling_rate": _SAMPLE_RATE})[0]["label"]]

    return classify


def _our_candidate(folder, length_mode, keep_ratio=None):
    """Top-1 class index of a file through ``AudioClassifier``."""
    classifier = AudioClassifier.from_hparams(source=folder, run_opts={"device": "cpu"})
    classifier.set_length_mode(length_mode)
    classifier.set_merge(keep_ratio=keep_ratio)

    def classify(path):
        return int(classifier.predict_file(path).scores.argmax())

    return classify


def main(argv=None, prog=None):
    """Run the comparison and print one Markdown table per folder.

    ``argv``: the arguments (default ``sys.argv[1:]``, ``--help`` lists them);
    ``prog``: the program name shown by ``--help``.

    Returns
    -------
    dict
        ``{folder: {candidate: {"clips_per_s": ..., "agreement": ...}}}``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per folder")
    parser.add_argument("--runs", type=int, default=2, help="timed rounds (median)")
    parser.add_argument("--short", type=float, default=1.0, help="shortest mixed clip (s)")
    parser.add_argument(
        "--long", type=float, default=10.0, help="clip length of the long folder (s)"
    )
    parser.add_argument("--input-tdim", type=int, default=1024, help="model input frames")
    parser.add_argument("--tiny", action="store_true", help="a 2-block tiny AST (tests)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    folders = {
        f"{args.long:g} s clips": [args.long] * args.clips,
        f"mixed {args.short:g}-{args.long:g} s clips": rng.uniform(
            args.short, args.long, args.clips
        ),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf_folder = _hf_model_folder(tmp / "hf", args.input_tdim, args.tiny)
        ours = export_checkpoint(hf_folder, tmp / "ours", mean=AUDIOSET_MEAN, std=AUDIOSET_STD)
        candidates = {
            "Hugging Face pipeline": _hf_candidate(hf_folder),
            "ours, r = 0, AST padding": _our_candidate(ours, "pad"),
            "ours, r = 0, native length": _our_candidate(ours, "native"),
            "ours, keep 0.85, native length": _our_candidate(ours, "native", keep_ratio=0.85),
        }
        for i, (name, durations) in enumerate(folders.items()):
            paths = _write_clips(tmp / f"folder{i}", durations, seed=i)
            timings = time_interleaved(
                {name: (_over_files(fn), paths, "cpu") for name, fn in candidates.items()},
                args.runs,
            )
            seconds, top1 = timings.medians(), timings.outputs
            results[name] = _table(name, seconds, top1, len(paths), sum(durations))
    return results


def _over_files(classify):
    """One candidate call: every file of the folder, one at a time."""
    return lambda paths: [classify(path) for path in paths]


def _table(name, seconds, top1, n_clips, audio_seconds):
    reference = "Hugging Face pipeline"
    print(f"\n{name} ({n_clips} clips, {audio_seconds:.0f} s of audio, one file at a time)")
    print("| candidate | clips/s | speed-up vs HF | top-1 agrees with HF |")
    print("|---|---|---|---|")
    rows = {}
    for cand, secs in seconds.items():
        agree = np.mean([a == b for a, b in zip(top1[cand], top1[reference])])
        rows[cand] = {"clips_per_s": n_clips / secs, "agreement": float(agree)}
        print(
            f"| {cand} | {n_clips / secs:.2f} | {seconds[reference] / secs:.2f}x | "
            f"{100 * agree:.0f} % |"
        )
    return rows


if __name__ == "__main__":
    main()
