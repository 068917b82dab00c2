"""Label files: the class names of a dataset, in class-index order, from any format we meet.

``read_labels`` is the one reader of label files, for ``fastast export
--labels``, ``fastast sweep --labels`` and the recipes' label encoders;
``label_index`` maps the names a manifest may use to class indices. They
sit in ``data`` (a dataset's class list is data) so that every layer that
takes a label file (``inference``, ``evaluation``, ``training``) imports
them from below. Formats, told apart by name and content:

* AudioSet's ``class_labels_indices.csv`` (header ``index,mid,display_name``):
  the display names, read by ``fastast_plugin.data.audioset.read_class_labels``;
* SpeechBrain's ``CategoricalEncoder`` file (``label_encoder.txt``,
  ``'name' => index`` lines);
* a ``.json`` file: a list of names, or an object ``{name: index}``;
* any other text file: one name per line.

Authors
 * fastast developers 2026
"""

import json
from pathlib import Path

from speechbrain.dataio.encoder import CategoricalEncoder

from fastast_plugin.data.audioset import read_class_labels

__all__ = ["label_index", "read_labels"]

_AUDIOSET_HEADER = "index,mid,display_name"


def read_labels(path):
    """Class names from a label file, in class-index order.

    Arguments
    ---------
    path : str or os.PathLike
        The label file (formats: see the module docstring).

    Returns
    -------
    list of str
        Names; position = class index.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        Naming the file, when it holds no names or is malformed.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "class_labels_indices.csv").write_text(
    ...     'index,mid,display_name\\n0,/m/09x0r,"Speech"\\n1,/m/05zppz,"Male speech, man speaking"\\n')
    >>> read_labels(tmp / "class_labels_indices.csv")
    ['Speech', 'Male speech, man speaking']
    >>> encoder = CategoricalEncoder()
    >>> encoder.update_from_iterable(["dog", "cat"])
    >>> encoder.save(tmp / "label_encoder.txt")
    >>> read_labels(tmp / "label_encoder.txt")
    ['dog', 'cat']
    >>> _ = (tmp / "labels.json").write_text('{"cat": 1, "dog": 0}')
    >>> read_labels(tmp / "labels.json")
    ['dog', 'cat']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"label file {str(path)!r} holds no labels")
    if path.suffix.lower() == ".json":
        names = _json_names(path, text)
    elif _is_audioset_index(lines):
        names = [name for _, name in read_class_labels(path).values()]
    elif "=>" in lines[0]:
        encoder = CategoricalEncoder()
        encoder.load(path)
        names = [encoder.ind2lab[i] for i in range(len(encoder))]
    else:
        names = lines
    if not names:
        raise ValueError(f"label file {str(path)!r} holds no labels")
    return names


def label_index(path):
    """Class index of every name a manifest may give a class.

    The names ``read_labels`` returns and, for AudioSet's
    ``class_labels_indices.csv``, also each label mid (``/m/09x0r``), which
    AudioSet's segment lists and AST's datafiles use.

    Arguments
    ---------
    path : str or os.PathLike
        The label file.

    Returns
    -------
    dict
        Name (or mid) to class index.

    Example
    -------
    >>> path = getfixture("tmp_path") / "class_labels_indices.csv"
    >>> _ = path.write_text('index,mid,display_name\\n0,/m/09x0r,"Speech"\\n1,/m/0bt9lr,"Dog"\\n')
    >>> label_index(path)
    {'Speech': 0, 'Dog': 1, '/m/09x0r': 0, '/m/0bt9lr': 1}
    """
    index = {name: i for i, name in enumerate(read_labels(path))}
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    if Path(path).suffix.lower() != ".json" and _is_audioset_index([x for x in lines if x]):
        index.update({mid: i for mid, (i, _) in read_class_labels(path).items()})
    return index


def _is_audioset_index(lines):
    """Whether a file's first line is the header of AudioSet's class index."""
    return bool(lines) and lines[0].replace(" ", "").lower().startswith(_AUDIOSET_HEADER)


def _json_names(path, text):
    """Names of a JSON list, or of a ``{name: index}`` object in index order."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"label file {str(path)!r} is not valid JSON: {err}") from err
    if isinstance(data, dict):
        try:
            order = sorted(data.items(), key=lambda item: int(item[1]))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"label file {str(path)!r}: a JSON object must map names to integer "
                f"indices, got {data!r:.200}"
            ) from err
        return [str(name) for name, _ in order]
    if isinstance(data, list):
        return [str(name) for name in data]
    raise ValueError(
        f"label file {str(path)!r} must hold a JSON list of names or an object "
        f"{{name: index}}, got {type(data).__name__}"
    )
