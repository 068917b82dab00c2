"""The teacher-logits store: written by precompute and the EfficientAT import, read by LogitsStore.

Both writers go through ``write_store``; a write that fails leaves the
store that was there whole.
"""

import json
import pickle

import numpy as np
import pytest
import soundfile as sf
from torch import nn

from fastast_plugin.training.efficientat import _import_ensemble_logits
from fastast_plugin.training.logits_store import read_store, write_store
from fastast_plugin.training.precompute import _precompute_teacher_logits
from fastast_plugin.training.teachers import LogitsStore


def test_round_trip_and_one_id_per_row(tmp_path):
    logits = np.arange(6, dtype=np.float16).reshape(3, 2)
    write_store(tmp_path / "s", logits, [10, 11, 12], {"teacher": "x"})
    got, index = read_store(tmp_path / "s")
    assert index == {"10": 0, "11": 1, "12": 2} and got.dtype == np.float16
    np.testing.assert_array_equal(got, logits)
    assert json.loads((tmp_path / "s" / "meta.json").read_text()) == {"teacher": "x"}
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "index.json",
        "logits.npy",
        "meta.json",
    ]
    with pytest.raises(ValueError, match=r"2 ids \(1 distinct\) for shape \(2, 2\)"):
        write_store(tmp_path / "t", np.zeros((2, 2), np.float32), ["a", "a"], {})


def failing_np_save(file, arr, **kwargs):
    """``np.save`` that fails half-way, as on a full disk: a partial file, then an error."""
    data = b"\x93NUMPY\x01\x00partial"
    if hasattr(file, "write"):
        file.write(data)
    else:
        with open(file, "wb") as f:
            f.write(data)
    raise OSError(28, "No space left on device")


def test_a_failed_efficientat_import_leaves_the_previous_store(tmp_path, monkeypatch):
    # The import wrote the store files in place, one after the other.
    np.save(tmp_path / "ensemble.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    (tmp_path / "f.pkl").write_bytes(pickle.dumps({"YabcdefghijK.mp3": 0, "Ybcdefghijkl.mp3": 2}))
    store = tmp_path / "store"
    _import_ensemble_logits(tmp_path / "ensemble.npy", tmp_path / "f.pkl", store, dtype="float32")
    monkeypatch.setattr(np, "save", failing_np_save)
    with pytest.raises(OSError, match="No space left"):
        _import_ensemble_logits(tmp_path / "ensemble.npy", tmp_path / "f.pkl", store)
    monkeypatch.undo()
    logits, mask = LogitsStore(store, num_classes=2)(None, None, ["abcdefghijK", "bcdefghijkl"])
    assert logits.tolist() == [[0.0, 1.0], [4.0, 5.0]] and mask.all()
    assert sorted(p.name for p in store.iterdir()) == ["index.json", "logits.npy", "meta.json"]


def test_a_failed_precompute_leaves_the_previous_store(tmp_path, monkeypatch):
    # precompute replaced logits.npy before it wrote the index: a failure in
    # between left new logits with the old index.
    for name, n in (("a", 1600), ("b", 800)):
        sf.write(tmp_path / f"{name}.wav", np.full(n, 0.1, np.float32), 16000)
    manifest = {k: {"wav": str(tmp_path / f"{k}.wav")} for k in ("a", "b")}
    teacher = nn.Linear(1, 3)
    nn.init.constant_(teacher.weight, 1.0)
    nn.init.zeros_(teacher.bias)

    def run(teacher, manifest):
        return _precompute_teacher_logits(
            lambda wavs, lens, ids: (teacher(wavs.mean(1, keepdim=True)), None),
            manifest,
            tmp_path / "store",
            dtype="float32",
        )

    before = np.array(run(teacher, manifest).logits)
    nn.init.constant_(teacher.weight, 2.0)
    real_dump = json.dump

    def failing_dump(obj, f, **kwargs):
        if "a" in obj:  # the index
            raise OSError(28, "No space left on device")
        real_dump(obj, f, **kwargs)

    monkeypatch.setattr(json, "dump", failing_dump)
    with pytest.raises(OSError, match="No space left"):
        run(teacher, manifest)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.array(LogitsStore(tmp_path / "store").logits), before)
