"""Training from WebDataset tar shards, split across DDP ranks and loader workers.

Full AudioSet is two million small files; reading them from a shared file
system is slow, and SpeechBrain splits only map-style datasets across DDP
ranks (for an ``IterableDataset`` it warns that it "cannot automatically
solve distributed sampling"). Here:

* ``write_shards`` packs a prepared manifest into tar shards
  (``shard-000000.tar``, ...), one sample per clip: the audio file's bytes
  as they are (``<key>.audio.<ext>``), ``<key>.json`` (``id``, ``labels``,
  ``duration``) and, from a teacher ``LogitsStore``, the clip's teacher
  logits as raw little-endian float32 (``<key>.logits.f32``); plus
  ``shards.json`` (shard names, clips per shard, the number of clips).
  Keys are running numbers, since WebDataset splits a key at its first dot.
  It needs only the standard library's ``tarfile``.
* ``_ShardStream`` (an ``IterableDataset``, needs the ``webdataset``
  package) reads them: ``webdataset.split_by_node`` gives each rank a
  disjoint share of the shards (rank ``r`` of ``n``: shards ``r, r + n,
  ...``), ``webdataset.split_by_worker`` splits that share across the
  loader's workers, and each worker *resamples* its shards (reshuffled
  passes over them, for as long as needed) into a shuffle buffer. Every rank
  then stops after the same nominal number of batches per epoch
  (``clips_per_epoch / (world_size * batch_size)``), so no rank waits for
  another at a DDP all-reduce. Batches are SpeechBrain ``PaddedBatch`` es
  with ``id``, ``sig`` (mono, at ``sample_rate``), ``label_encoded``
  (multi-hot) and ``shard``; from shards written with a teacher also
  ``teacher_logits`` (zeros where a clip has none) and ``teacher_mask``
  (``[1]``, 1.0 where the clip has logits).
* ``shard_loader`` wraps it in a ``DataLoader`` that gives the stream its
  epoch (from the recipe's ``EpochCounter``) before each pass, so each epoch
  (also after a restart) draws a different, reproducible order.

Authors
 * fastast developers 2026
"""

import io
import json
import math
import os
import random
import tarfile
import time

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.audioset import multi_hot, read_class_labels
from fastast_plugin.data.dataio import read_manifest
from fastast_plugin.data.sampling import distributed_world

__all__ = ["ShardLoader", "measure_throughput", "shard_loader", "write_shards"]

logger = get_logger(__name__)

_INDEX_FILE = "shards.json"
_SHARD_PATTERN = "shard-{:06d}.tar"


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


def write_shards(manifest, out_dir, clips_per_shard=1000, teacher=None, seed=0):
    """Pack the clips of a manifest into WebDataset tar shards (audio bytes, labels, teacher logits).

    Arguments
    ---------
    manifest : str or dict
        A prepared manifest (path, or the loaded ``{clip id: entry}``) whose
        entries have ``wav`` and ``labels``.
    out_dir : str
        Output folder (shards and ``shards.json``).
    clips_per_shard : int
        Clips per shard (the last one may hold fewer). Aim for at least
        ``ranks * workers`` shards, a few hundred MB each.
    teacher : LogitsStore, optional
        Precomputed teacher logits to store with each clip (clips it lacks
        are written without logits and counted in ``shards.json``).
    seed : int
        The clips are shuffled with it before packing (shards then mix
        classes and sources).

    Returns
    -------
    dict
        The index written to ``shards.json``.

    Example
    -------
    >>> import soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(str(tmp / "a.wav"), np.zeros(160), 16000)
    >>> entries = {f"c{i}": {"wav": str(tmp / "a.wav"), "labels": ["/m/a"]} for i in range(5)}
    >>> index = write_shards(entries, str(tmp / "shards"), clips_per_shard=2)
    >>> index["shards"], index["clips_per_shard"], index["clips"]
    (['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar'], [2, 2, 1], 5)
    """
    entries = read_manifest(manifest) if isinstance(manifest, (str, os.PathLike)) else manifest
    if clips_per_shard < 1:
        raise ValueError(f"clips_per_shard must be >= 1, got {clips_per_shard}")
    ids = sorted(entries)
    random.Random(seed).shuffle(ids)
    os.makedirs(out_dir, exist_ok=True)
    names, counts, without_logits = [], [], 0
    for first in range(0, len(ids), clips_per_shard):
        name = _SHARD_PATTERN.format(len(names))
        tmp = os.path.join(out_dir, name + ".partial")
        chunk = ids[first : first + clips_per_shard]
        with tarfile.open(tmp, "w") as tar:
            for offset, clip_id in enumerate(chunk):
                entry = entries[clip_id]
                key = f"{first + offset:09d}"
                ext = os.path.splitext(entry["wav"])[1].lower() or ".wav"
                with open(entry["wav"], "rb") as f:
                    _add(tar, f"{key}.audio{ext}", f.read())
                record = {"id": clip_id, "labels": list(entry["labels"])}
                if "duration" in entry:
                    record["duration"] = entry["duration"]
                _add(tar, f"{key}.json", json.dumps(record).encode())
                if teacher is not None:
                    logits, mask = teacher(None, None, [clip_id])
                    if bool(mask[0]):
                        data = logits[0].numpy().astype("<f4").tobytes()
                        _add(tar, f"{key}.logits.f32", data)
                    else:
                        without_logits += 1
        os.replace(tmp, os.path.join(out_dir, name))
        names.append(name)
        counts.append(len(chunk))
    index = {
        "shards": names,
        "clips_per_shard": counts,
        "clips": len(ids),
        "teacher": None if teacher is None else teacher.source,
        "clips_without_teacher_logits": without_logits if teacher is not None else None,
    }
    with open(os.path.join(out_dir, _INDEX_FILE), "w") as f:
        json.dump(index, f, indent=1)
    logger.info("Wrote %d clips in %d shards to %s", len(ids), len(names), out_dir)
    return index


def _read_shard_index(folder):
    """``shards.json`` of a shard folder, with full shard paths.

    Arguments
    ---------
    folder : str
        A folder ``write_shards`` wrote.

    Returns
    -------
    dict
        The index; ``paths`` holds the shard paths.
    """
    path = os.path.join(folder, _INDEX_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"shard index {path} not found; write shards with recipes/AudioSet/make_shards.py"
        )
    with open(path) as f:
        index = json.load(f)
    index["paths"] = [os.path.join(folder, name) for name in index["shards"]]
    missing = [p for p in index["paths"] if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} shards listed in {path} are missing: {missing[:3]}"
        )
    return index


def _identity(batch):
    return batch


def _node_world():
    """This process' rank and the number of processes, as ``webdataset.split_by_node`` sees them.

    ``RANK`` / ``WORLD_SIZE`` from the environment (torchrun sets them) if
    both are set, else ``torch.distributed``, else ``(0, 1)``: the same
    order as WebDataset's ``pytorch_worker_info``, so the number of batches
    and the split of the shards always agree.

    Returns
    -------
    tuple of int
        ``(rank, world_size)``.

    Example
    -------
    >>> _node_world()
    (0, 1)
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return distributed_world()


class _ShardStream(torch.utils.data.IterableDataset):
    """Batches from tar shards: disjoint shards per rank and worker, resampled, a nominal epoch.

    Arguments
    ---------
    shards : list of str
        Shard paths (e.g. ``_read_shard_index(folder)["paths"]``); at least
        ``world_size * num_workers`` of them, so every worker has one.
    class_labels_file : str
        ``class_labels_indices.csv`` (label mid to class index).
    n_classes : int
        Expected number of classes.
    batch_size : int
        Clips per batch (per rank).
    clips_per_epoch : int
        Nominal epoch, all ranks together (e.g. the number of clips in the
        shards): each rank yields ``clips_per_epoch // (world_size *
        batch_size)`` batches per epoch.
    sample_rate : int
        Rate of the ``sig`` waveforms.
    shuffle_buffer : int
        Clips in each worker's shuffle buffer.
    seed : int
        Base seed of shard order and shuffling.
    num_workers : int
        Loader workers (to split the shards and batches between).
    with_teacher : bool
        Give every item ``teacher_logits`` ``[n_classes]`` (zeros when the
        clip has none) and ``teacher_mask``; ``shard_loader`` sets it when
        the shards were written with a teacher.

    Example
    -------
    >>> stream = _ShardStream(["a.tar", "b.tar"], "c.csv", 2, batch_size=4, clips_per_epoch=10)
    >>> len(stream)  # batches per epoch on one process
    2
    """

    def __init__(
        self,
        shards,
        class_labels_file,
        n_classes,
        batch_size,
        clips_per_epoch,
        sample_rate=16000,
        shuffle_buffer=1000,
        seed=0,
        num_workers=0,
        with_teacher=False,
    ):
        self.with_teacher = bool(with_teacher)
        self.shards = [os.fspath(s) for s in shards]
        if not self.shards:
            raise ValueError("ShardStream needs at least one shard")
        self.class_labels_file = class_labels_file
        self.n_classes = n_classes
        self.batch_size = int(batch_size)
        self.clips_per_epoch = int(clips_per_epoch)
        self.sample_rate = sample_rate
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.epoch = 0
        self._classes = None

    def __len__(self):
        _, world_size = _node_world()
        batches = self.clips_per_epoch // (world_size * self.batch_size)
        if batches < 1:
            raise ValueError(
                f"clips_per_epoch={self.clips_per_epoch} gives no batch of "
                f"{self.batch_size} on each of {world_size} processes"
            )
        return batches

    def _worker(self):
        info = torch.utils.data.get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def _my_shards(self):
        import webdataset as wds

        rank, world_size = _node_world()
        worker, num_workers = self._worker()
        if len(self.shards) < world_size * num_workers:
            raise ValueError(
                f"{len(self.shards)} shards for {world_size} processes x {num_workers} "
                "loader workers: every worker needs at least one shard; write more, "
                "smaller shards (make_shards.py --clips_per_shard) or use fewer workers"
            )
        urls = [{"url": url} for url in self.shards]
        # webdataset reads the rank from RANK/WORLD_SIZE (torchrun) or torch.distributed
        mine = list(wds.split_by_worker(wds.split_by_node(iter(urls))))
        return [u["url"] for u in mine], rank, worker

    def _resampled(self, shards, rng):
        """Endless reshuffled passes over this worker's shards."""
        while True:
            order = list(shards)
            rng.shuffle(order)
            for url in order:
                yield {"url": url}

    def _decode(self, sample):
        if self._classes is None:
            self._classes = read_class_labels(self.class_labels_file)
            if len(self._classes) != self.n_classes:
                raise ValueError(
                    f"{self.class_labels_file} has {len(self._classes)} classes, but "
                    f"n_classes is {self.n_classes}"
                )
        meta = json.loads(sample["json"])
        audio = [key for key in sample if key.startswith("audio.")]
        if len(audio) != 1:
            raise ValueError(
                f"shard {sample.get('__url__')}: sample {sample.get('__key__')} has "
                f"{len(audio)} audio entries, expected 1"
            )
        item = {
            "id": meta["id"],
            "sig": load_audio(io.BytesIO(sample[audio[0]]), self.sample_rate),
            "label_encoded": multi_hot(meta["labels"], self._classes),
            "shard": os.path.basename(sample["__url__"]),
        }
        if self.with_teacher:
            logits = torch.zeros(self.n_classes)
            if "logits.f32" in sample:
                logits = torch.from_numpy(np.frombuffer(sample["logits.f32"], dtype="<f4").copy())
                if logits.numel() != self.n_classes:
                    raise ValueError(
                        f"shard {sample['__url__']}: clip {meta['id']} has {logits.numel()} "
                        f"teacher logits, expected {self.n_classes}"
                    )
            item["teacher_logits"] = logits
            item["teacher_mask"] = torch.tensor([float("logits.f32" in sample)])
        return item

    def __iter__(self):
        import webdataset as wds

        shards, rank, worker = self._my_shards()
        _, num_workers = self._worker()
        total = len(self)
        batches = total // num_workers + (worker < total % num_workers)
        rng = random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker}")
        samples = wds.tarfile_to_samples()(self._resampled(shards, rng))
        initial = min(self.shuffle_buffer, 100)  # WebDataset's default start-up fill
        samples = wds.shuffle(self.shuffle_buffer, initial=initial, rng=rng)(samples)
        batch = []
        done = 0
        for sample in samples:
            if done == batches:
                return
            batch.append(self._decode(sample))
            if len(batch) == self.batch_size:
                yield sb.dataio.batch.PaddedBatch(batch)
                batch, done = [], done + 1


class ShardLoader(torch.utils.data.DataLoader):
    """A ``DataLoader`` over a ``_ShardStream`` that sets the stream's epoch before each pass.

    Arguments
    ---------
    stream : _ShardStream
        The batches.
    epoch_counter : EpochCounter, optional
        Its ``current`` epoch seeds each pass (so a resumed run continues
        the sequence); without it, passes are counted.
    **kwargs
        ``DataLoader`` arguments (``num_workers``, ``pin_memory``, ...).
    """

    def __init__(self, stream, epoch_counter=None, **kwargs):
        kwargs.setdefault("num_workers", stream.num_workers)
        if kwargs["num_workers"] != stream.num_workers:
            raise ValueError(
                f"ShardLoader num_workers={kwargs['num_workers']} differs from the "
                f"stream's {stream.num_workers}"
            )
        super().__init__(stream, batch_size=None, collate_fn=_identity, **kwargs)
        self.epoch_counter = epoch_counter
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        counter = self.epoch_counter
        self.dataset.epoch = counter.current if counter is not None else self.passes
        return super().__iter__()


def shard_loader(
    folder,
    class_labels_file,
    n_classes,
    batch_size,
    num_workers=0,
    clips_per_epoch=None,
    epoch_counter=None,
    **kwargs,
):
    """A ``ShardLoader`` over the shards of a folder written by ``write_shards``.

    Arguments
    ---------
    folder : str
        The shard folder (with ``shards.json``).
    class_labels_file : str
        ``class_labels_indices.csv``.
    n_classes : int
        Expected number of classes.
    batch_size : int
        Clips per batch and rank.
    num_workers : int
        Loader workers per rank.
    clips_per_epoch : int, optional
        Nominal epoch (all ranks); default: the number of clips in the shards.
    epoch_counter : EpochCounter, optional
        Seeds each epoch.
    **kwargs
        More ``_ShardStream`` arguments (``sample_rate``, ``shuffle_buffer``,
        ``seed``).

    Returns
    -------
    ShardLoader
        Give it to ``Brain.fit`` as the training set.
    """
    index = _read_shard_index(folder)
    stream = _ShardStream(
        index["paths"],
        class_labels_file,
        n_classes,
        batch_size,
        clips_per_epoch or index["clips"],
        num_workers=num_workers,
        with_teacher=index.get("teacher") is not None,
        **kwargs,
    )
    _, world_size = _node_world()
    logger.info(
        "Training from %d shards in %s: %d batches of %d per process and epoch, %d processes",
        len(index["paths"]),
        folder,
        len(stream),
        batch_size,
        world_size,
    )
    return ShardLoader(stream, epoch_counter=epoch_counter, num_workers=num_workers)


def measure_throughput(loader, max_batches=None):
    """Clips per second read from a loader (its first pass or ``max_batches`` batches).

    Arguments
    ---------
    loader : iterable of PaddedBatch
        E.g. a ``ShardLoader`` or a SpeechBrain loader of the same clips.
    max_batches : int, optional
        Stop after this many batches.

    Returns
    -------
    dict
        ``clips``, ``seconds`` and ``clips_per_s`` (from the first batch's
        arrival, so worker start-up is excluded).
    """
    clips, start = 0, None
    for i, batch in enumerate(loader):
        if start is None:
            start = time.perf_counter()
            continue
        clips += len(batch.id)
        if max_batches is not None and i + 1 >= max_batches:
            break
    seconds = time.perf_counter() - start if start is not None else math.nan
    return {"clips": clips, "seconds": seconds, "clips_per_s": clips / max(seconds, 1e-9)}
