"""Export an AST into a self-contained SpeechBrain inference folder.

An exported folder (file names and format version:
``fastast_plugin.weights.folder``) holds:

* ``model.safetensors``: the ``ASTClassifier`` weights (``encoder.*``,
  ``head.*``);
* ``fastast_config.json``: plain JSON with everything needed to rebuild the
  model and its input (encoder and head arguments, ``KaldiFbank`` settings
  with mean/std and input length, labels, multi-label flag, window hop);
  ``fastast_plugin.models.pretrained.from_pretrained`` reads the folder from it and
  the weights, without executing any YAML;
* ``label_encoder.txt``: SpeechBrain's ``CategoricalEncoder`` file;
* ``hyperparams.yaml``: for ``fastast_plugin.inference.classifier.AudioClassifier.
  from_hparams`` (which, like every SpeechBrain interface, executes it).

Sources: any model in memory (``export_model``), any checkpoint that
``from_pretrained`` reads (``export_checkpoint``: original AST ``.pth``,
Hugging Face AST folder, FlexiAST ``.pth``, fastast files, exported folders)
and a recipe's output folder (``export_run``).

Authors
 * fastast developers 2026
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import save_file
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.utils.logger import get_logger

from fastast_plugin.cli_options import add_option
from fastast_plugin.data.labels import read_labels
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD
from fastast_plugin.models.pretrained import MERGE_SETTING, from_pretrained
from fastast_plugin.weights.folder import (
    AUDIOSET_CLASSES,
    CONFIG_FILE,
    FORMAT,
    HPARAMS_FILE,
    LABELS_FILE,
    WEIGHTS_FILE,
    read_export_config,
)
from fastast_plugin.weights.registry import find, labels_file

__all__ = ["export_checkpoint", "export_config", "export_model", "main", "read_labels"]

logger = get_logger(__name__)


def export_model(model, out_dir, features, labels=None, multi_label=False, window_hop=0.5):
    """Write an ``ASTClassifier`` and its input settings as an inference folder.

    Arguments
    ---------
    model : ASTClassifier
        The model (its encoder's current merge and patch settings are kept).
    out_dir : str or os.PathLike
        The folder to write (created; existing export files are replaced).
    features : KaldiFbank or dict
        The feature extractor, or its settings (``sample_rate``, ``n_mels``,
        ``mean``, ``std``; the input length is the encoder's ``input_tdim``).
    labels : list of str, optional
        One name per class (default: ``model.labels``, else ``"0"``, ``"1"``, ...).
    multi_label : bool
        Sigmoid outputs (AudioSet) rather than softmax.
    window_hop : float
        Hop between windows of long files, as a fraction of a window.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> from fastast_plugin.models.features import KaldiFbank
    >>> model = ASTClassifier(ASTEncoder("tiny224", depth=1, input_tdim=128), ASTHead(192, 2))
    >>> out = export_model(model, getfixture("tmp_path") / "m", KaldiFbank(), ["no", "yes"])
    >>> sorted(p.name for p in out.iterdir())
    ['fastast_config.json', 'hyperparams.yaml', 'label_encoder.txt', 'model.safetensors']
    """
    config = export_config(model, features, labels, multi_label, window_hop)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE))
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(config["labels"])
    encoder.save(out_dir / LABELS_FILE)
    (out_dir / HPARAMS_FILE).write_text(_hyperparams_yaml(config), encoding="utf-8")
    logger.info("Exported %d-class model to %s", len(config["labels"]), out_dir)
    return out_dir


def export_config(model, features=None, labels=None, multi_label=False, window_hop=0.5):
    """The plain-JSON config that rebuilds a model and its input (``fastast_config.json``).

    Also stored in a recipe's ``model.pt``. A flexible encoder's run-time
    patch size and stride are recorded with it.

    Arguments
    ---------
    model : ASTClassifier
        The model.
    features : KaldiFbank or dict, optional
        The feature extractor or its settings (default: ``KaldiFbank``'s).
    labels : list of str, optional
        One name per class (default: ``model.labels``, else indices).
    multi_label : bool
        Sigmoid outputs rather than softmax.
    window_hop : float
        Hop between windows of long files, as a fraction of a window.

    Returns
    -------
    dict

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
    >>> encoder = ASTEncoder("tiny224", depth=1, input_tdim=128, flexible="both")
    >>> encoder.set_patch_size(16, stride=12)
    >>> config = export_config(ASTClassifier(encoder, ASTHead(192, 2)))
    >>> config["runtime_patch_size"], config["runtime_stride"], config["labels"]
    ([16, 16], [12, 12], ['0', '1'])
    """
    n_classes = model.head.linear.out_features
    labels = list(labels if labels is not None else model.labels or map(str, range(n_classes)))
    if len(labels) != n_classes:
        raise ValueError(
            f"{len(labels)} labels given for a head of {n_classes} classes; "
            "the label file must name every class once"
        )
    config = {
        "format": FORMAT,
        "encoder": model.encoder.init_kwargs(),
        "head": {
            "input_size": model.head.linear.in_features,
            "n_classes": n_classes,
            "layer_norm_eps": model.head.norm.eps,
        },
        "features": _feature_settings(
            {} if features is None else features, model.encoder.input_tdim
        ),
        "labels": labels,
        "multi_label": bool(multi_label),
        "window_hop": float(window_hop),
    }
    if model.encoder.flexible != "none":
        config["runtime_patch_size"] = list(model.encoder.patch_size)
        config["runtime_stride"] = list(model.encoder.patch_stride)
    return config


def _feature_settings(features, input_tdim):
    if not isinstance(features, dict):
        features = {k: getattr(features, k) for k in ("sample_rate", "n_mels", "mean", "std")}
    settings = {"sample_rate": 16000, "n_mels": 128, "mean": None, "std": None}
    unknown = set(features) - set(settings) - {"target_length"}
    if unknown:
        raise ValueError(f"unknown feature settings {sorted(unknown)}; expected {sorted(settings)}")
    settings.update({k: v for k, v in features.items() if k != "target_length"})
    settings["target_length"] = int(input_tdim)
    return settings


def export_checkpoint(
    source,
    out_dir,
    labels=None,
    mean=None,
    std=None,
    multi_label=None,
    window_hop=0.5,
    **overrides,
):
    """Export any checkpoint ``from_pretrained`` reads, with new run-time settings.

    Arguments
    ---------
    source : str or os.PathLike
        Original AST ``.pth``, Hugging Face AST folder, FlexiAST ``.pth``,
        fastast file, exported folder or registry name
        (``fastast_plugin.weights.registry``).
    out_dir : str or os.PathLike
        The folder to write.
    labels : str or os.PathLike, optional
        A label file (``fastast_plugin.data.labels.read_labels``); default: the checkpoint's own
        labels (Hugging Face ``id2label``, exported folders, a registry
        entry's packaged labels), else indices.
    mean, std : float, optional
        Feature statistics; default: the exported folder's or the registry
        entry's, else AudioSet's (those of every released AST checkpoint),
        logged.
    multi_label : bool, optional
        Default: the exported folder's, else True for 527 classes (AudioSet).
    window_hop : float
        Hop of the windows of long files, as a fraction of a window.
    **overrides
        ``from_pretrained`` overrides: ``input_tdim``, ``r``, ``keep_ratio``,
        ``patch_size``, ...

    Returns
    -------
    pathlib.Path
        The folder.
    """
    previous = read_export_config(source)
    model = from_pretrained(source, **overrides)
    n_classes = model.head.linear.out_features
    entry = find(source)  # a registry name brings its labels and statistics
    if labels is None and entry is not None and entry.architecture.get("n_classes") == n_classes:
        labels = labels_file(entry)
    if mean is None and std is None and entry is not None:
        mean, std = entry.architecture.get("mean"), entry.architecture.get("std")
    names = read_labels(labels) if labels is not None else None
    if names is not None and len(names) != n_classes:
        raise ValueError(
            f"{labels} names {len(names)} classes, but {source} has a head of {n_classes} classes"
        )
    features = dict(previous["features"]) if previous else {}
    if mean is not None or std is not None:
        features.update(mean=mean, std=std)
    if features.get("mean") is None:
        logger.info("%s: no feature statistics given, using AudioSet's", source)
        features.update(mean=AUDIOSET_MEAN, std=AUDIOSET_STD)
    if multi_label is None:
        multi_label = previous["multi_label"] if previous else n_classes == AUDIOSET_CLASSES
    return export_model(model, out_dir, features, names, multi_label, window_hop)


def _yaml_value(value):
    """A scalar or flat list as YAML (JSON scalars are YAML; booleans as SpeechBrain writes them)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        mantissa, e, exponent = repr(value).partition("e")
        # YAML 1.1 (hyperpyyaml) reads "1e-06" as a string: give the mantissa a dot.
        return mantissa + ("" if "." in mantissa or not e else ".0") + e + exponent
    return json.dumps(value)


def _yaml_block(tag, settings, refs=()):
    """A ``!new:`` block; the keys in ``refs`` refer to top-level keys of that name."""
    lines = [tag]
    lines += [
        f"    {key}: !ref <{key}>" if key in refs else f"    {key}: {_yaml_value(value)}"
        for key, value in settings.items()
    ]
    return "\n".join(lines)


def _hyperparams_yaml(config):
    """The ``hyperparams.yaml`` of an exported folder, for ``AudioClassifier``.

    Arguments
    ---------
    config : dict
        The folder's ``fastast_config.json`` content.

    Returns
    -------
    str
        YAML text building ``compute_features``, ``embedding_model``,
        ``classifier``, ``label_encoder`` and a ``Pretrainer`` that loads
        ``model.safetensors`` strictly from ``<source>`` (set by
        ``AudioClassifier.from_hparams``).
    """
    features = dict(config["features"])
    return (
        "\n\n".join(
            [
                "# Inference folder written by fastast export.\n"
                "# AudioClassifier.from_hparams executes this file (as every SpeechBrain\n"
                "# interface does); from_pretrained reads fastast_config.json instead.",
                "source: !PLACEHOLDER\n"
                f"sample_rate: {_yaml_value(features['sample_rate'])}\n"
                f"multi_label: {_yaml_value(config['multi_label'])}\n"
                f"window_hop: {_yaml_value(config['window_hop'])}",
                "# Run-time settings. r and keep_ratio are one setting (keep_ratio wins),\n"
                "# and so are patch_size and patch_stride (flexible models): overriding\n"
                "# one in AudioClassifier.from_hparams resets the other.\n"
                f"r: {_yaml_value(config['encoder']['r'])}\n"
                f"keep_ratio: {_yaml_value(config['encoder']['keep_ratio'])}\n"
                f"patch_size: {_yaml_value(config.get('runtime_patch_size'))}\n"
                f"patch_stride: {_yaml_value(config.get('runtime_stride'))}",
                _yaml_block(
                    "compute_features: !new:fastast_plugin.models.features.KaldiFbank", features
                ),
                _yaml_block(
                    "embedding_model: !new:fastast_plugin.models.ast.ASTEncoder",
                    config["encoder"],
                    refs=MERGE_SETTING,
                ),
                _yaml_block("classifier: !new:fastast_plugin.models.ast.ASTHead", config["head"]),
                "model: !new:fastast_plugin.models.ast.ASTClassifier\n"
                "    encoder: !ref <embedding_model>\n"
                "    head: !ref <classifier>",
                "label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder",
                "modules:\n"
                "    compute_features: !ref <compute_features>\n"
                "    embedding_model: !ref <embedding_model>\n"
                "    classifier: !ref <classifier>",
                "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
                "    loadables:\n"
                "        model: !ref <model>\n"
                "        label_encoder: !ref <label_encoder>\n"
                "    paths:\n"
                f"        model: !ref <source>/{WEIGHTS_FILE}\n"
                f"        label_encoder: !ref <source>/{LABELS_FILE}\n"
                "    custom_hooks:\n"
                "        model: !name:fastast_plugin.inference.classifier.load_weights",
            ]
        )
        + "\n"
    )


def _resolve_source(source):
    """A recipe's output folder stands for the inference folder it exported.

    Arguments
    ---------
    source : str or os.PathLike
        A checkpoint, an exported folder, or a recipe output folder holding
        ``export/`` (written after its test stage).

    Returns
    -------
    str
        ``<source>/export`` for a recipe output folder, else ``source``.
    """
    exported = Path(source) / "export"
    if read_export_config(source) is None and read_export_config(exported) is not None:
        return str(exported)
    return str(source)


def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog or "fastast export",
        description="Write an inference folder (hyperparams.yaml, model.safetensors, "
        "label_encoder.txt, fastast_config.json) from any AST checkpoint: original AST "
        ".pth, Hugging Face AST folder, FlexiAST .pth, a recipe output folder or an "
        "exported folder.",
    )
    parser.add_argument(
        "source", help="checkpoint file or folder, or a registry name (fastast weights)"
    )
    parser.add_argument("out_dir", help="folder to write")
    parser.add_argument(
        "--labels",
        help="class_labels_indices.csv, label_encoder.txt, a JSON list or {name: index}, "
        "or one label per line",
    )
    parser.add_argument("--input-tdim", type=int, help="input frames (default: the checkpoint's)")
    parser.add_argument("--mean", type=float, help="feature mean (default: AudioSet's)")
    parser.add_argument("--std", type=float, help="feature std (default: AudioSet's)")
    add_option(parser, "r", note="written as the folder's default")
    add_option(parser, "keep_ratio", note="written as the folder's default")
    add_option(parser, "patch_size", note="written as the folder's default; makes it flexible")
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write model.onnx: encoder + head at these settings, dynamic batch "
        "(needs the onnx extra: onnx, onnxscript, onnxruntime)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="with --onnx, also write model.int8.onnx (ONNX Runtime's dynamic int8)",
    )
    label_kind = parser.add_mutually_exclusive_group()
    label_kind.add_argument("--multi-label", dest="multi_label", action="store_true", default=None)
    label_kind.add_argument("--single-label", dest="multi_label", action="store_false")
    return parser


def main(argv=None, prog=None):
    """Run ``fastast export``.

    ``argv``: the arguments (default ``sys.argv[1:]``, ``--help`` lists them);
    ``prog``: the program name shown by ``--help``.

    Returns
    -------
    pathlib.Path
        The written folder.
    """
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if (args.mean is None) != (args.std is None):
        parser.error("--mean and --std go together")
    if args.int8 and not args.onnx:
        parser.error(
            "--int8 writes an int8 ONNX file and needs --onnx (PyTorch's int8 is a "
            "run-time option: fastast classify --int8)"
        )
    overrides = {
        key: value
        for key, value in (
            ("input_tdim", args.input_tdim),
            ("r", args.r),
            ("keep_ratio", args.keep_ratio),
            ("patch_size", args.patch_size),
        )
        if value is not None
    }
    out = export_checkpoint(
        _resolve_source(args.source),
        args.out_dir,
        labels=args.labels,
        mean=args.mean,
        std=args.std,
        multi_label=args.multi_label,
        **overrides,
    )
    print(f"wrote {out}")
    if args.onnx:
        from fastast_plugin.inference.onnx import export_onnx  # optional dependencies

        print(f"wrote {export_onnx(from_pretrained(out), out / 'model.onnx')}")
        if args.int8:
            from fastast_plugin.inference.quantize import quantize_onnx

            print(f"wrote {quantize_onnx(out / 'model.onnx', out / 'model.int8.onnx')}")
    return out
