"""Unit tests for fastast_plugin.training.efficientat: importing EfficientAT's ensemble logits without running pickled code.

Authors
 * fastast developers 2026
"""

import collections
import json
import os
import pickle

import numpy as np
import pytest

from fastast_plugin.training.efficientat import _import_ensemble_logits, _read_fname_to_index
from fastast_plugin.training.teachers import LogitsStore


class Payload:
    """Unpickling this would run ``os.system`` (it creates ``marker``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_reduce_payload_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "fname_to_index.pkl"
    path.write_bytes(pickle.dumps({"YabcdefghijK.mp3": 0, "evil": Payload(marker)}))
    with pytest.raises(
        ValueError, match=r"fname_to_index\.pkl: refused to unpickle \(refused global"
    ):
        _read_fname_to_index(path)
    assert not marker.exists()
    # the same file would have run the payload under pickle.load: the test's payload is real
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "obj",
    [collections.OrderedDict(a=1), {"a": np.int64(1)}, {"a": 1.5}, ["a"]],
    ids=["class global", "numpy scalar", "float row", "not a dict"],
)
def test_anything_but_a_plain_str_to_int_dict_is_refused_naming_the_file(tmp_path, obj):
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError, match=str(path)):
        _read_fname_to_index(path)
    (tmp_path / "g.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="g.pkl is not a readable pickle"):
        _read_fname_to_index(tmp_path / "g.pkl")


def test_import_keys_rows_by_youtube_id_and_keeps_only_the_manifest_clips(tmp_path):
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "ensemble.npy", logits)
    names = {
        "Y--PJHxphWEs_30.000_40.000.mp3": 3,  # AudioSet downloader name
        "YabcdefghijK.mp3": 0,  # PANNs / EfficientAT hdf5 style
        "zzzzzzzzzzz_10000.wav": 4,
        "qqqqqqqqqqq.flac": 1,  # not in the manifest
        "README": 2,  # no scheme
    }
    (tmp_path / "f.pkl").write_bytes(pickle.dumps(names))
    wanted = ["--PJHxphWEs", "abcdefghijK", "zzzzzzzzzzz", "nologits000"]
    meta = _import_ensemble_logits(
        tmp_path / "ensemble.npy",
        tmp_path / "f.pkl",
        tmp_path / "store",
        clip_ids=wanted,
        dtype="float32",
    )
    assert meta["rows"] == 3 and meta["unparsed_names"] == ["README"]
    assert meta["names_not_in_clip_ids"] == 1 and meta["clip_ids_without_logits"] == 1
    store = LogitsStore(tmp_path / "store", num_classes=4)
    got, mask = store(None, None, ["zzzzzzzzzzz", "--PJHxphWEs", "abcdefghijK", "qqqqqqqqqqq"])
    assert mask.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(got[:3].numpy(), logits[[4, 3, 0]])
    assert json.loads((tmp_path / "store" / "meta.json").read_text())["source"].endswith(
        "ensemble.npy"
    )


def test_import_errors_name_the_files(tmp_path):
    np.save(tmp_path / "l.npy", np.zeros((2, 3), np.float32))
    (tmp_path / "f.pkl").write_bytes(pickle.dumps({"YabcdefghijK.mp3": 5}))
    with pytest.raises(ValueError, match="maps to row 5, but .*l.npy has 2 rows"):
        _import_ensemble_logits(tmp_path / "l.npy", tmp_path / "f.pkl", tmp_path / "s")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="o.npy is not a readable .npy array"):
        _import_ensemble_logits(tmp_path / "o.npy", tmp_path / "f.pkl", tmp_path / "s")
