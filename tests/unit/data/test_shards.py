"""Unit tests for fastast_plugin.data.shards: writing WebDataset shards and reading them split by rank and worker.

Authors
 * fastast developers 2026
"""

import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin.data.shards import _read_shard_index, _ShardStream, shard_loader, write_shards
from fastast_plugin.training.teachers import LogitsStore

pytest.importorskip("webdataset")

CLASSES_CSV = "index,mid,display_name\n0,/m/a,A\n1,/m/b,B\n2,/m/c,C\n"


@pytest.fixture
def shards(tmp_path):
    """16 FLAC clips (clip i: i + 1 samples of value i / 100), 4 shards of 4, with teacher logits."""
    (tmp_path / "classes.csv").write_text(CLASSES_CSV)
    entries = {}
    for i in range(16):
        path = tmp_path / f"clip{i}.flac"
        sf.write(str(path), np.full(100 + i, i / 100, dtype=np.float32), 16000)
        entries[f"clip{i:02d}"] = {"wav": str(path), "labels": ["/m/a", "/m/c"][: 1 + i % 2]}
    np.save(tmp_path / "logits.npy", np.arange(15 * 3, dtype=np.float32).reshape(15, 3))
    (tmp_path / "index.json").write_text(json.dumps({f"clip{i:02d}": i for i in range(15)}))
    teacher = LogitsStore(tmp_path)  # clip15 has no logits
    index = write_shards(entries, str(tmp_path / "shards"), clips_per_shard=4, teacher=teacher)
    return tmp_path, entries, index


def batches(loader):
    return [(list(b.id), list(b.shard), b) for b in loader]


def test_shards_hold_audio_bytes_labels_and_teacher_logits(shards):
    tmp_path, entries, index = shards
    assert index["clips"] == 16 and index["clips_per_shard"] == [4] * 4
    assert index["clips_without_teacher_logits"] == 1
    with tarfile.open(tmp_path / "shards" / index["shards"][0]) as tar:
        names = tar.getnames()
    assert names[0].endswith(".audio.flac") and names[1].endswith(".json")
    loader = shard_loader(str(tmp_path / "shards"), str(tmp_path / "classes.csv"), 3, batch_size=4)
    seen, items = {}, 0
    for _, _, batch in batches(loader):
        items += len(batch.id)
        for i, clip_id in enumerate(batch.id):
            n = int(clip_id[4:])
            samples = round(float(batch.sig.lengths[i]) * batch.sig.data.shape[1])
            sig = batch.sig.data[i, :samples]
            assert samples == 100 + n
            torch.testing.assert_close(sig, torch.full((100 + n,), n / 100), atol=1e-4, rtol=0)
            assert batch.label_encoded.data[i].tolist() == [1.0, 0.0, float(n % 2)]
            seen[clip_id] = batch
    assert items == 16 and len(seen) > 1  # one nominal epoch; resampled, so repeats may occur


def test_teacher_logits_round_trip_exactly(tmp_path, shards):
    tmp, _, _ = shards
    stream = _ShardStream(
        _read_shard_index(str(tmp / "shards"))["paths"],
        str(tmp / "classes.csv"),
        3,
        batch_size=4,
        clips_per_epoch=64,
        shuffle_buffer=1,
        with_teacher=True,
    )
    found = {}
    for batch in stream:
        for i, clip_id in enumerate(batch.id):
            found[clip_id] = (
                batch.teacher_logits.data[i].tolist(),
                bool(batch.teacher_mask.data[i, 0]),
            )
    assert len(found) == 16  # 64 draws, shuffle buffer 1: every pass reads every shard
    for clip_id, (logits, mask) in found.items():
        n = int(clip_id[4:])
        if n == 15:
            assert (logits, mask) == ([0.0, 0.0, 0.0], False)
        else:
            assert (logits, mask) == ([3.0 * n, 3.0 * n + 1, 3.0 * n + 2], True)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_two_ranks_read_disjoint_halves_for_the_same_number_of_batches(
    shards, monkeypatch, num_workers
):
    tmp_path, _, index = shards
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = shard_loader(
            str(tmp_path / "shards"),
            str(tmp_path / "classes.csv"),
            3,
            batch_size=2,
            num_workers=num_workers,
        )
        got = batches(loader)
        assert len(loader) == len(got) == 16 // (2 * 2)
        per_rank.append(got)
        if num_workers:  # one shard per worker: each batch comes from one shard
            assert all(len(set(shard_names)) == 1 for _, shard_names, _ in got)
    shards_of = [{s for _, names, _ in got for s in names} for got in per_rank]
    assert shards_of[0] == {index["shards"][0], index["shards"][2]}
    assert shards_of[1] == {index["shards"][1], index["shards"][3]}
    ids_of = [{i for ids, _, _ in got for i in ids} for got in per_rank]
    assert not ids_of[0] & ids_of[1]


def test_epochs_are_reshuffled_and_reproducible(shards):
    tmp_path, _, _ = shards

    class Counter:
        current = 1

    counter = Counter()
    args = (str(tmp_path / "shards"), str(tmp_path / "classes.csv"), 3)
    loader = shard_loader(*args, batch_size=4, epoch_counter=counter, shuffle_buffer=4)
    first = [ids for ids, _, _ in batches(loader)]
    assert [ids for ids, _, _ in batches(loader)] == first  # same epoch: same order
    counter.current = 2
    assert [ids for ids, _, _ in batches(loader)] != first


def test_too_few_shards_for_the_workers_is_an_error_naming_the_counts(shards, monkeypatch):
    tmp_path, _, _ = shards
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    loader = shard_loader(
        str(tmp_path / "shards"), str(tmp_path / "classes.csv"), 3, batch_size=1, num_workers=2
    )
    with pytest.raises(ValueError, match="4 shards for 4 processes x 2 loader workers"):
        batches(loader)
    (tmp_path / "shards" / "shard-000001.tar").unlink()
    with pytest.raises(FileNotFoundError, match="1 shards listed"):
        _read_shard_index(str(tmp_path / "shards"))
