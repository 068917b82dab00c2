"""The exported inference folder's format: its file names, format version and config.

An exported folder (``fastast_plugin.inference.export`` writes it,
``fastast_plugin.models.pretrained.from_pretrained`` and
``AudioClassifier.from_hparams`` read it) holds:

* ``model.safetensors`` (``WEIGHTS_FILE``): the ``ASTClassifier`` weights;
* ``fastast_config.json`` (``CONFIG_FILE``): plain JSON that rebuilds the
  model and its input, tagged with ``FORMAT``; a recipe's ``model.pt``
  stores the same config beside its state dict (key ``STORED_CONFIG_KEY``);
* ``label_encoder.txt`` (``LABELS_FILE``): SpeechBrain's ``CategoricalEncoder``;
* ``hyperparams.yaml`` (``HPARAMS_FILE``): for ``AudioClassifier.from_hparams``.

``read_export_config`` is the one reader of the config. It sits in the
bottom layer because both the model builder (``models``) and the exporter
(``inference``) need it.

Authors
 * fastast developers 2026
"""

from pathlib import Path

from fastast_plugin.weights.state_dict import CheckpointError, read_json, read_stored_entry

__all__ = [
    "AUDIOSET_CLASSES",
    "CONFIG_FILE",
    "FORMAT",
    "HPARAMS_FILE",
    "LABELS_FILE",
    "STORED_CONFIG_KEY",
    "WEIGHTS_FILE",
    "read_export_config",
]

FORMAT = "fastast-export-1"
CONFIG_FILE = "fastast_config.json"
WEIGHTS_FILE = "model.safetensors"
LABELS_FILE = "label_encoder.txt"
HPARAMS_FILE = "hyperparams.yaml"
STORED_CONFIG_KEY = "fastast_config"
# AudioSet's class count: the head a checkpoint without one gets (AST's
# default), and the class count an export takes as multi-label by default.
AUDIOSET_CLASSES = 527


def read_export_config(source):
    """The fastast config of an exported folder or a recipe's ``model.pt``, else None.

    An exported folder holds it as ``fastast_config.json``; a ``model.pt``
    written by a recipe stores it beside its state dict (key
    ``fastast_config``). Plain JSON data: reading it executes nothing
    (unlike an exported folder's ``hyperparams.yaml``, which
    ``from_pretrained`` never reads).

    Arguments
    ---------
    source : str or os.PathLike
        Any ``from_pretrained`` source.

    Returns
    -------
    dict or None
        The config (encoder and head arguments, run-time patch size and
        stride, features, labels) when ``source`` records one.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> read_export_config(folder) is None
    True
    >>> _ = (folder / CONFIG_FILE).write_text('{"format": "fastast-export-1", "labels": ["a"]}')
    >>> read_export_config(folder)["labels"]
    ['a']
    """
    path = Path(source)
    if path.is_dir():
        json_path = path / CONFIG_FILE
        config = read_json(json_path) if json_path.is_file() else None
    else:
        json_path = path
        config = read_stored_entry(path, STORED_CONFIG_KEY) if path.is_file() else None
    if config is None:
        return None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(
            f"{json_path}: expected an export config with format {FORMAT!r}, got {found!r}"
        )
    return config
