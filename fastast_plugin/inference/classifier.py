"""Classify audio files with a trained or exported AST: a SpeechBrain interface.

``AudioClassifier`` is a ``speechbrain.inference.interfaces.Pretrained``
interface over the modules of an exported folder (``fastast export`` or
``fastast_plugin.inference.export``): ``compute_features`` (``KaldiFbank``),
``embedding_model`` (``ASTEncoder``) and ``classifier`` (``ASTHead``).

* Any file: read with soundfile, averaged to mono, resampled to the model's
  rate (``fastast_plugin.data.audio.load_audio``).
* Any length: a clip shorter than the model's minimum (``min_samples``:
  one patch, 175 ms, in native length mode; one 25 ms frame in pad mode)
  is padded with silence at its end, so a click is classified rather than
  failing its whole batch; a clip longer than the model's input is cut into windows of
  the model's input length (``input_tdim`` frames, 10.24 s for AudioSet
  models) with a hop of ``window_hop`` windows (default 0.5), the last
  window aligned to the end of the clip. Single-label models average the
  windows' logits; multi-label models take, per class, the maximum of the
  windows' probabilities, as AudioSet tagging does. The per-window results,
  with start and end times, come with ``predict_file``.
* Run-time knobs: ``set_merge`` (token merging), ``set_patch_size``
  (flexible models), ``set_length_mode`` (pad to the model's input as AST
  does, or "native": the clip's own length, masking padding in a batch).
* Back ends: PyTorch eager; ``torch.compile`` through SpeechBrain's
  ``run_opts={"compile": True}`` (1.1-1.3x on the CPU at r = 0, see the
  README's table); autocast through ``run_opts={"precision": "bf16"}``
  (features stay fp32); dynamic int8 linear layers (``use_int8``); an ONNX
  export in ONNX Runtime (``use_onnx``, fp32 or int8).

Like every SpeechBrain interface, ``from_hparams`` executes the
``hyperparams.yaml`` it loads (``!new:``, ``!apply:``): only load folders you
trust. ``fastast_plugin.models.pretrained.from_pretrained`` reads an exported folder
from its weights and plain JSON config without executing anything.

Authors
 * fastast developers 2026
"""

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

from fastast_plugin.data.audio import AudioError, load_audio
from fastast_plugin.models.ast import LENGTH_MODES
from fastast_plugin.models.features import batch_features, min_clip_samples, sample_counts
from fastast_plugin.models.pretrained import MERGE_SETTING, one_setting_overrides
from fastast_plugin.weights.state_dict import load_strict, read_state_dict

__all__ = [
    "AudioClassifier",
    "FileResult",
    "MultiLabelOutput",
    "Prediction",
    "Window",
    "load_weights",
]

logger = get_logger(__name__)

_URL_SCHEMES = ("http://", "https://")  # sources speechbrain.utils.fetching downloads


class Window(NamedTuple):
    """The model's output for one window of a clip.

    Arguments
    ---------
    start : float
        Start of the window in seconds.
    end : float
        End of the window in seconds.
    scores : torch.Tensor
        ``[classes]``: logits (single-label) or probabilities (multi-label).
    """

    start: float
    end: float
    scores: torch.Tensor


class Prediction(NamedTuple):
    """A clip's aggregated output and its windows.

    Arguments
    ---------
    scores : torch.Tensor
        ``[classes]``: log-probabilities (single-label, from the mean of the
        windows' logits) or probabilities (multi-label, the maximum over
        windows).
    windows : list of Window
        One entry per window, in time order.
    """

    scores: torch.Tensor
    windows: list[Window]


class MultiLabelOutput(NamedTuple):
    """``classify_batch`` of a multi-label model (unpacks like SpeechBrain's 4-tuple).

    Arguments
    ---------
    out_prob : torch.Tensor
        ``[batch, classes]`` probabilities.
    score : list of torch.Tensor
        Per clip, the probabilities of the selected classes (descending).
    index : list of torch.Tensor
        Per clip, the selected class indices.
    text_lab : list of list of str
        Per clip, the selected labels.
    """

    out_prob: torch.Tensor
    score: list[torch.Tensor]
    index: list[torch.Tensor]
    text_lab: list[list[str]]


class FileResult(NamedTuple):
    """What ``classify_files`` returns for one file.

    Arguments
    ---------
    path : str
        The file.
    labels : list of str
        The selected labels, best first (empty when the file failed).
    scores : list of float
        Their probabilities.
    windows : list of Window
        Per-window outputs (empty when the file failed).
    error : str or None
        Why the file could not be classified, or None.
    """

    path: str
    labels: list[str]
    scores: list[float]
    windows: list[Window]
    error: str | None = None


def load_weights(module, path):
    """Pretrainer hook: load a safetensors / torch state dict strictly.

    The format is told from the file's content: the Pretrainer stores the
    weights as ``<savedir>/model.ckpt`` (a symlink or a copy).

    Arguments
    ---------
    module : torch.nn.Module
        The module to load into.
    path : str or os.PathLike
        The weights file (safetensors or a torch state dict, any name).

    Example
    -------
    >>> from safetensors.torch import save_file
    >>> path = str(getfixture("tmpdir") / "w.safetensors")
    >>> save_file(torch.nn.Linear(2, 2).state_dict(), path)
    >>> load_weights(torch.nn.Linear(2, 2), path).weight.shape
    torch.Size([2, 2])
    """
    return load_strict(module, read_state_dict(path), str(path))


def _check_local_source(source, hparams_file):
    """Name a missing local folder or YAML (SpeechBrain would try the hub instead)."""
    text = str(source)
    if text.startswith(_URL_SCHEMES):
        return  # downloaded by SpeechBrain's fetch (savedir needed)
    path = Path(text).expanduser()
    looks_local = path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1
    if not looks_local:
        return  # a hub id, "owner/name", fetched by SpeechBrain
    if not path.is_dir():
        raise FileNotFoundError(f"model folder not found: {text}")
    if not (path / hparams_file).is_file():
        raise FileNotFoundError(
            f"{text} has no {hparams_file}: expected an exported model folder "
            "(`fastast export CHECKPOINT OUT_DIR` writes one)"
        )


class AudioClassifier(Pretrained):
    """Classify waveforms or files of any rate and length with an AST.

    The hyperparameters must define ``sample_rate``, ``label_encoder`` and
    ``multi_label``; ``window_hop`` (fraction of a window, default 0.5),
    ``patch_size`` and ``patch_stride`` (run-time patch size and stride of
    a flexible model) are optional.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder, ASTHead
    >>> from fastast_plugin.models.features import KaldiFbank
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> labels = CategoricalEncoder()
    >>> labels.load_or_create(getfixture("tmpdir") / "l.txt", from_iterables=[["a", "b"]])
    >>> modules = {
    ...     "compute_features": KaldiFbank(target_length=128),
    ...     "embedding_model": ASTEncoder("tiny224", depth=1, input_tdim=128),
    ...     "classifier": ASTHead(192, 2),
    ... }
    >>> hparams = {"sample_rate": 16000, "label_encoder": labels, "multi_label": False}
    >>> clf = AudioClassifier(modules, hparams, run_opts={"device": "cpu"})
    >>> out_prob, score, index, text_lab = clf.classify_batch(torch.randn(3, 40000))
    >>> out_prob.shape, len(text_lab)
    (torch.Size([3, 2]), 3)
    """

    MODULES_NEEDED = ["compute_features", "embedding_model", "classifier"]
    HPARAMS_NEEDED = ["sample_rate", "label_encoder", "multi_label"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.window_hop = float(vars(self.hparams).get("window_hop", 0.5))
        if not 0 < self.window_hop <= 1:
            raise ValueError(f"window_hop must be in (0, 1], got {self.window_hop}")
        self.batch_size = 8
        patch_size = vars(self.hparams).get("patch_size")
        patch_stride = vars(self.hparams).get("patch_stride")
        if (
            patch_size is not None or patch_stride is not None
        ):  # a flexible model's run-time patches
            self.set_patch_size(patch_size, patch_stride)
        self.set_length_mode(self.mods.embedding_model.length_mode)

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", **kwargs):
        """Load an exported folder (local path or hub id) as an interface.

        Executes the folder's ``hyperparams.yaml``: load only folders you trust.

        ``overrides`` of ``r`` or ``keep_ratio`` (top-level keys, or keys of
        ``embedding_model``) replace the exported merge setting as a whole,
        and so do those of ``patch_size`` or ``patch_stride``
        (``models.pretrained.one_setting_overrides``).

        Arguments
        ---------
        source : str or os.PathLike
            A local folder, an ``http(s)://`` folder or a hub id (fetched by
            SpeechBrain; URLs need ``savedir``).
        hparams_file : str
            The YAML file in the folder.
        **kwargs : dict
            Passed to ``Pretrained.from_hparams`` (``savedir``,
            ``local_strategy``, ``overrides``, ``run_opts``, ...).

        Returns
        -------
        AudioClassifier
        """
        _check_local_source(source, hparams_file)
        overrides = one_setting_overrides(kwargs.pop("overrides", None) or {})
        if isinstance(overrides.get("embedding_model"), dict):
            overrides["embedding_model"] = one_setting_overrides(
                overrides["embedding_model"], [MERGE_SETTING]
            )
        overrides.setdefault("source", str(source))
        return super().from_hparams(
            source, hparams_file=hparams_file, overrides=overrides, **kwargs
        )

    # ------------------------------------------------------------------
    # Run-time knobs
    # ------------------------------------------------------------------
    @property
    def multi_label(self):
        """Whether the model is multi-label (sigmoid) rather than single-label."""
        return bool(self.hparams.multi_label)

    def set_merge(self, r=0, keep_ratio=None, prop_attn=None):
        """Token merging of the encoder (``ASTEncoder.set_merge``), same weights.

        Arguments
        ---------
        r : int, list or tuple
            Tokens merged per block.
        keep_ratio : float, optional
            Fraction of tokens kept per block (overrides ``r``).
        prop_attn : bool, optional
            Proportional attention; None leaves it as it is.
        """
        encoder = self.mods.embedding_model
        encoder.set_merge(r=r, keep_ratio=keep_ratio)
        if prop_attn is not None:
            encoder.prop_attn = bool(prop_attn)

    def set_patch_size(self, patch_size=None, stride=None):
        """Patch size and stride of a flexible encoder (``ASTEncoder.set_patch_size``).

        Arguments
        ---------
        patch_size : int or tuple of int, optional
            None: the base patch size.
        stride : int or tuple of int, optional
            None: the patch size (non-overlapping), or the base stride at the
            base patch size.
        """
        self.mods.embedding_model.set_patch_size(patch_size, stride)

    def set_length_mode(self, mode):
        """``"pad"``: pad/crop every clip to the model's input, as AST does.

        ``"native"``: each clip runs at its own length (shorter clips cost
        fewer tokens); in a batch, padding is masked.

        Arguments
        ---------
        mode : str
            ``"pad"`` or ``"native"``.
        """
        if mode not in LENGTH_MODES:
            raise ValueError(f"length mode must be one of {LENGTH_MODES}, got {mode!r}")
        encoder = self.mods.embedding_model
        encoder.length_mode = mode
        features = self.mods.compute_features
        features.target_length = encoder.input_tdim if mode == "pad" else None

    def use_int8(self):
        """Run the encoder's and head's linear layers in dynamic int8 (CPU).

        PyTorch's dynamic quantisation (``quantize.quantize_linear_int8``):
        int8 weights, activations quantised per batch. Token merging, patch
        size and length mode work as before; the logits move by about 1 %
        of their range (measured in ``tests/unit/test_quantize.py``).

        Returns
        -------
        AudioClassifier
            This interface.
        """
        from fastast_plugin.inference.quantize import quantize_linear_int8

        for name in ("embedding_model", "classifier"):
            module = self.mods[name]
            if hasattr(module, "_orig_mod"):
                raise ValueError(
                    f"{name} is compiled (run_opts['compile']); int8 replaces its "
                    "layers: load the interface without compile to use int8"
                )
            quantize_linear_int8(module, inplace=True)
        return self

    def use_onnx(self, path, providers=None, threads=None):
        """Run an ONNX export of the model (``fastast export --onnx``) instead of PyTorch.

        Features stay PyTorch's, in ``"pad"`` length mode; merging and patch
        size are those the ONNX file was exported with.

        Arguments
        ---------
        path : str or os.PathLike
            The ``.onnx`` file (``onnx_export.export_onnx``, or its int8
            version from ``quantize.quantize_onnx``).
        providers : list of str, optional
            onnxruntime execution providers (default: CPU).
        threads : int, optional
            onnxruntime intra-op threads.

        Returns
        -------
        AudioClassifier
            This interface.
        """
        from fastast_plugin.inference.onnx import attach_onnx  # optional dependencies

        attach_onnx(self, path, providers, threads)
        return self

    @property
    def window_samples(self):
        """Samples in one window: the model's input of ``input_tdim`` frames."""
        return self.mods.compute_features.samples_for(self.mods.embedding_model.input_tdim)

    @property
    def min_samples(self):
        """Samples of the shortest clip the model takes; shorter clips are padded with silence.

        One patch of frames (175 ms at 16x16 patches, 16 kHz) in ``"native"``
        length mode; one feature frame (25 ms) in ``"pad"`` mode, where the
        features are padded to the model's input anyway.
        """
        return min_clip_samples(self.mods.compute_features, self.mods.embedding_model)

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def windows(self, num_samples):
        """Window ``(start, end)`` sample ranges covering a clip.

        Arguments
        ---------
        num_samples : int
            Clip length in samples.

        Returns
        -------
        list of (int, int)
            One window for a clip no longer than the model's input; else
            windows of the model's input with a hop of ``window_hop``
            windows, the last one ending at the end of the clip.
        """
        size = self.window_samples
        if num_samples <= size:
            return [(0, num_samples)]
        hop = max(1, int(size * self.window_hop))
        starts = list(range(0, num_samples - size, hop)) + [num_samples - size]
        return [(start, start + size) for start in sorted(set(starts))]

    def predict_batch(self, wavs, wav_lens=None):
        """Aggregated scores and windows for a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, samples]`` (or ``[samples]``) mono at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]``.

        Returns
        -------
        list of Prediction
            One per clip.
        """
        return self._predict(self._clips(wavs, wav_lens))

    def _clips(self, wavs, wav_lens):
        """Each clip of a padded batch cut to its own length."""
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        lengths = sample_counts(wav_lens, wavs.shape[1])
        return [wav[:n] for wav, n in zip(wavs, lengths)]

    def predict_file(self, path):
        """Aggregated scores and per-window outputs for one file.

        Arguments
        ---------
        path : str or os.PathLike
            Any audio file soundfile reads, any rate, any channel count.

        Returns
        -------
        Prediction
        """
        return self._predict([load_audio(path, self.hparams.sample_rate)])[0]

    def _predict(self, clips):
        return [
            Prediction(self._aggregate(windows), windows)
            for windows in self._run_windows(clips, self._window_scores)
        ]

    def _run_windows(self, clips, run):
        """``run`` over every window of every clip, in batches: per clip, its ``Window`` list."""
        spans = [(i, s, e) for i, clip in enumerate(clips) for s, e in self.windows(len(clip))]
        # Windows of similar length share a batch: less padding, and in native
        # mode fewer distinct lengths (one encoder pass each when merging).
        order = sorted(range(len(spans)), key=lambda k: spans[k][2] - spans[k][1])
        scores = [None] * len(spans)
        for first in range(0, len(order), self.batch_size):
            chunk = order[first : first + self.batch_size]
            segments = [clips[spans[k][0]][spans[k][1] : spans[k][2]] for k in chunk]
            for k, row in zip(chunk, run(segments)):
                scores[k] = row
        rate = float(self.hparams.sample_rate)
        per_clip = [[] for _ in clips]
        for (i, start, end), row in zip(spans, scores):
            per_clip[i].append(Window(start / rate, end / rate, row))
        return per_clip

    def _window_scores(self, segments):
        """Logits (single-label) or probabilities (multi-label) ``[n, classes]``."""
        emb = self._window_embeddings(segments)
        # Not nested in _window_embeddings' context: an autocast object is not
        # re-entrant, and leaving it twice left autocast on for the process.
        with torch.no_grad(), self.inference_ctx:
            logits = self.mods.classifier(emb)
        logits = logits.squeeze(1).float().cpu()
        return torch.sigmoid(logits) if self.multi_label else logits

    def _window_embeddings(self, segments):
        """Pooled embeddings ``[n, 1, D]`` of windows (on the device)."""
        lengths = torch.tensor([len(s) for s in segments])
        wavs = torch.zeros(len(segments), int(lengths.max()))
        for row, seg in zip(wavs, segments):
            row[: len(seg)] = seg
        wavs = wavs.to(self.device)
        wav_lens = (lengths.double() / lengths.max()).to(self.device)
        with torch.no_grad(), self.inference_ctx:
            # A clip too short for the model (a click) is run padded with silence.
            feats, feat_lens = batch_features(
                self.mods.compute_features, wavs, wav_lens, self.min_samples
            )
            return self.mods.embedding_model(feats, feat_lens)

    def _aggregate(self, windows):
        stacked = torch.stack([w.scores for w in windows])
        if self.multi_label:
            return stacked.max(0).values
        return torch.log_softmax(stacked.mean(0), -1)

    # ------------------------------------------------------------------
    # Embeddings (SpeechBrain's EncoderClassifier.encode_batch / encode_file)
    # ------------------------------------------------------------------
    def encode_batch(self, wavs, wav_lens=None):
        """Pooled embeddings of a batch of waveforms, as ``EncoderClassifier.encode_batch``.

        The encoder's pooled output (``ASTEncoder.pool``: the prefix tokens
        after the final norm, or the mean of the patch tokens with
        ``pooling="patch_mean"``), what the classifier reads. A clip longer
        than the model's input is windowed as in ``classify_batch`` and its
        window embeddings averaged. For the token sequence (the tokens left
        after merging) run ``self.mods.embedding_model.forward_features(
        self.mods.compute_features(wavs), lengths)`` on clips of at most one
        window.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, samples]`` (or ``[samples]``) mono at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]``.

        Returns
        -------
        torch.Tensor
            ``[batch, 1, embed_dim]`` on the interface's device.

        Example
        -------
        >>> from fastast_plugin.models.ast import ASTEncoder, ASTHead
        >>> from fastast_plugin.models.features import KaldiFbank
        >>> from speechbrain.dataio.encoder import CategoricalEncoder
        >>> labels = CategoricalEncoder()
        >>> labels.load_or_create(getfixture("tmpdir") / "l.txt", from_iterables=[["a", "b"]])
        >>> modules = {
        ...     "compute_features": KaldiFbank(target_length=128),
        ...     "embedding_model": ASTEncoder("tiny224", depth=1, input_tdim=128),
        ...     "classifier": ASTHead(192, 2),
        ... }
        >>> hparams = {"sample_rate": 16000, "label_encoder": labels, "multi_label": False}
        >>> clf = AudioClassifier(modules, hparams, run_opts={"device": "cpu"})
        >>> clf.encode_batch(torch.randn(3, 40000)).shape
        torch.Size([3, 1, 192])
        """
        return self._encode(self._clips(wavs, wav_lens))

    def encode_file(self, path):
        """Pooled embedding of one file (any rate, channels and length), as ``encode_batch``.

        Arguments
        ---------
        path : str or os.PathLike
            The audio file.

        Returns
        -------
        torch.Tensor
            ``[1, 1, embed_dim]``.
        """
        return self._encode([load_audio(path, self.hparams.sample_rate)])

    def _encode(self, clips):
        from fastast_plugin.inference.onnx import OnnxClassifier

        if isinstance(self.mods.embedding_model, OnnxClassifier):
            raise ValueError(
                "encode_batch / encode_file need the PyTorch encoder: use_onnx "
                "replaced it with an ONNX graph that outputs logits; load the "
                "interface again without use_onnx"
            )
        per_clip = self._run_windows(
            clips, lambda segments: self._window_embeddings(segments).float()
        )
        return torch.stack(
            [torch.stack([w.scores for w in windows]).mean(0) for windows in per_clip]
        )

    # ------------------------------------------------------------------
    # SpeechBrain-style outputs
    # ------------------------------------------------------------------
    def classify_batch(self, wavs, wav_lens=None, top_k=None, threshold=None):
        """Classify a batch of waveforms (any length: windowed).

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, samples]`` mono at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]``.
        top_k : int, optional
            Multi-label: keep the ``top_k`` best classes.
        threshold : float, optional
            Multi-label: keep the classes with a probability of at least this
            (default 0.5 when neither is given).

        Returns
        -------
        tuple
            Single-label: ``(out_prob, score, index, text_lab)`` as
            SpeechBrain's ``EncoderClassifier``: log-probabilities
            ``[batch, classes]``, the best log-probability and index
            ``[batch]``, and the best labels. Multi-label: a
            ``MultiLabelOutput`` of probabilities and the selected classes.
        """
        out = torch.stack([p.scores for p in self.predict_batch(wavs, wav_lens)])
        return self._outputs(out, top_k, threshold)

    def classify_file(self, path, top_k=None, threshold=None):
        """Classify one file (any rate, channels and length).

        Arguments
        ---------
        path : str or os.PathLike
            The audio file.
        top_k : int, optional
            Multi-label: see ``classify_batch``.
        threshold : float, optional
            Multi-label: see ``classify_batch``.

        Returns
        -------
        tuple
            As ``classify_batch`` for a batch of one.
        """
        return self._outputs(self.predict_file(path).scores[None], top_k, threshold)

    def _outputs(self, out, top_k, threshold):
        encoder = self.hparams.label_encoder
        if not self.multi_label:
            score, index = torch.max(out, dim=-1)
            return out, score, index, encoder.decode_torch(index)
        picked = [self._select(row, top_k, threshold) for row in out]
        return MultiLabelOutput(
            out,
            [row[idx] for row, idx in zip(out, picked)],
            picked,
            [[encoder.ind2lab[int(i)] for i in idx] for idx in picked],
        )

    def _select(self, probs, top_k, threshold):
        """Class indices, best first: the top-k, or those above a threshold."""
        order = torch.argsort(probs, descending=True)
        if top_k is not None:
            order = order[:top_k]
        if threshold is not None or top_k is None:
            limit = 0.5 if threshold is None else threshold
            order = order[probs[order] >= limit]
        return order

    def classify_files(self, paths: Sequence, batch_size=8, top_k=5, threshold=None, progress=True):
        """Classify many files, batching their windows; bad files are reported.

        Arguments
        ---------
        paths : list of str
            Audio files.
        batch_size : int
            Windows per forward pass.
        top_k : int
            Labels kept per file (single-label: by probability).
        threshold : float, optional
            Multi-label: keep only classes at least this probable.
        progress : bool
            Show a progress bar (tqdm).

        Returns
        -------
        list of FileResult
            One per path, in order; unreadable files carry ``error``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        results = [None] * len(paths)
        pending = {}  # index -> waveform, run once they fill a batch of windows
        for index, path in enumerate(tqdm(paths, disable=not progress, desc="classify")):
            try:
                pending[index] = load_audio(path, self.hparams.sample_rate)
            except (AudioError, FileNotFoundError) as err:
                logger.warning("skipping %s: %s", path, err)
                results[index] = FileResult(str(path), [], [], [], str(err))
            windows = sum(len(self.windows(len(clip))) for clip in pending.values())
            if windows >= batch_size or index == len(paths) - 1:
                predictions = self._predict(list(pending.values())) if pending else []
                for i, pred in zip(pending, predictions):
                    results[i] = self._file_result(str(paths[i]), pred, top_k, threshold)
                pending = {}
        return results

    def _file_result(self, path, prediction, top_k, threshold):
        if self.multi_label:
            probs = prediction.scores
            index = self._select(probs, top_k, threshold)
        else:
            probs = prediction.scores.exp()
            index = torch.argsort(probs, descending=True)[:top_k]
        labels = [self.hparams.label_encoder.ind2lab[int(i)] for i in index]
        return FileResult(path, labels, probs[index].tolist(), prediction.windows)

    def forward(self, wavs, wav_lens=None):
        """Run ``classify_batch``."""
        return self.classify_batch(wavs, wav_lens)
