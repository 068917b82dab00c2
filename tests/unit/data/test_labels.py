"""Label files: one reader for every format, the names a manifest may use."""

import json

import pytest
import torch
from speechbrain.dataio.encoder import CategoricalEncoder

from fastast_plugin import cli
from fastast_plugin.data.labels import label_index, read_labels
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead

AUDIOSET_CSV = 'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0bt9lr,"Dog, pet"\n'


def test_every_format_gives_the_names_in_class_order(tmp_path):
    files = {
        "class_labels_indices.csv": AUDIOSET_CSV,
        "unordered.csv": 'index,mid,display_name\n1,/m/0bt9lr,"Dog, pet"\n0,/m/09x0r,"Speech"\n',
        "spaced.csv": 'index, mid, display_name\n0, /m/09x0r, "Speech"\n1, /m/0bt9lr, "Dog, pet"\n',
        "list.json": json.dumps(["Speech", "Dog, pet"]),
        "object.json": json.dumps({"Dog, pet": 1, "Speech": 0}),
        "lines.txt": "Speech\n\nDog, pet\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(["Speech", "Dog, pet"])
    encoder.save(tmp_path / "label_encoder.txt")
    for name in [*files, "label_encoder.txt"]:
        assert read_labels(tmp_path / name) == ["Speech", "Dog, pet"], name
        assert read_labels(str(tmp_path / name)) == ["Speech", "Dog, pet"], name


def test_missing_empty_and_malformed_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_labels(tmp_path / "missing.txt")
    # sweep's reader took an empty file for zero classes.
    for name, text in (("empty.txt", "\n \n"), ("empty.json", "[]")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=f"{name}' holds no labels"):
            read_labels(tmp_path / name)
    (tmp_path / "bad.json").write_text('{"dog": "first"}')
    with pytest.raises(ValueError, match="bad.json'.*integer indices"):
        read_labels(tmp_path / "bad.json")
    (tmp_path / "gap.csv").write_text("index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n")
    with pytest.raises(ValueError, match=r"gap.csv: indices must be 0 to 1, each once"):
        read_labels(tmp_path / "gap.csv")


def test_manifests_may_name_audioset_classes_by_mid(tmp_path):
    (tmp_path / "class_labels_indices.csv").write_text(AUDIOSET_CSV)
    assert label_index(tmp_path / "class_labels_indices.csv") == {
        "Speech": 0,
        "Dog, pet": 1,
        "/m/09x0r": 0,
        "/m/0bt9lr": 1,
    }
    (tmp_path / "l.txt").write_text("dog\ncat\n")
    assert label_index(tmp_path / "l.txt") == {"dog": 0, "cat": 1}


def test_export_takes_a_json_label_file(tmp_path):
    # export's reader took a JSON file for one label per line.
    torch.manual_seed(0)
    model = ASTClassifier(ASTEncoder("tiny224", depth=1, input_tdim=128), ASTHead(192, 2))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    (tmp_path / "labels.json").write_text(json.dumps({"yes": 1, "no": 0}))
    argv = ["export", str(tmp_path / "model.pth"), str(tmp_path / "out")]
    assert cli.main([*argv, "--labels", str(tmp_path / "labels.json"), "--input-tdim", "128"]) == 0
    config = json.loads((tmp_path / "out" / "fastast_config.json").read_text())
    assert config["labels"] == ["no", "yes"]
    assert read_labels(tmp_path / "out" / "label_encoder.txt") == ["no", "yes"]
