"""Teacher sources: the frozen online teacher, the logits store and the recipe builders.

Authors
 * fastast developers 2026
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.training.losses import MultiLabelKDLoss, SingleLabelKDLoss
from fastast_plugin.training.teachers import (
    LogitsStore,
    OnlineTeacher,
    _build_ast_teacher,
    _check_teacher_classes,
    build_dymn_teacher,
    build_teacher,
)


# ---------------------------------------------------------------------------
# Online teacher
# ---------------------------------------------------------------------------
class RecordingFrontEnd(nn.Module):
    """Adds noise in training mode (like a jittering front-end) and records calls."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, wavs, wav_lens=None):
        self.modes.append(self.training)
        return wavs + torch.randn_like(wavs) if self.training else wavs


def small_teacher():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 4))
    return OnlineTeacher(model, RecordingFrontEnd())


def test_online_teacher_stays_in_eval_mode_under_parent_train():
    torch.manual_seed(0)
    teacher = small_teacher()
    parent = nn.ModuleDict({"student": nn.Linear(8, 4), "teacher": teacher})
    parent.train()
    assert parent["student"].training
    assert not any(m.training for m in teacher.modules())
    stats = teacher.model[1].running_mean.clone()
    x = torch.randn(5, 8)
    first, mask = teacher(x)
    second, _ = teacher(x)
    assert torch.equal(first, second)  # no dropout, no front-end jitter
    assert torch.equal(teacher.model[1].running_mean, stats)  # BN stats untouched
    assert teacher.front_end.modes == [False, False]
    assert mask.dtype == torch.bool and mask.all()
    trainable = [p for p in parent.parameters() if p.requires_grad]
    assert len(trainable) == 2  # the student's weight and bias only


def test_gradients_do_not_reach_the_teacher():
    torch.manual_seed(0)
    teacher = small_teacher()
    student = nn.Linear(8, 4)
    x = torch.randn(5, 8)
    logits, mask = teacher(x)
    assert not logits.requires_grad
    targets = torch.tensor([0, 1, 2, 3, 0])
    loss = SingleLabelKDLoss(kd_lambda=0.3)(student(x), targets, logits, mask).loss
    loss.backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # Even an unfrozen teacher's graph is cut by the loss.
    raw = nn.Linear(8, 4)
    loss = MultiLabelKDLoss()(student(x), torch.zeros(5, 4), raw(x)).loss
    loss.backward()
    assert raw.weight.grad is None


def test_online_teacher_output_forms():
    x = torch.randn(2, 6)

    class Pair(nn.Module):
        def forward(self, feats):
            return feats[:, :3], feats

    assert OnlineTeacher(Pair())(x).logits.shape == (2, 3)
    assert OnlineTeacher(nn.Unflatten(1, (1, 6)))(x).logits.shape == (2, 6)
    with pytest.raises(ValueError, match=r"logits \[2, classes\], got \(2, 1, 2, 3\)"):
        OnlineTeacher(nn.Unflatten(1, (1, 2, 3)))(x)


# ---------------------------------------------------------------------------
# Logits store
# ---------------------------------------------------------------------------
def write_store(folder, logits, index):
    folder.mkdir(exist_ok=True)
    np.save(folder / "logits.npy", logits)
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def test_logits_store_errors(tmp_path):
    good = np.zeros((3, 4), dtype=np.float16)
    with pytest.raises(FileNotFoundError, match="logits.npy"):
        LogitsStore(tmp_path / "missing")
    folder = write_store(tmp_path / "count", good, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="maps 2 ids .* 3 rows"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "range", good, {"a": 0, "b": 1, "c": 3})
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "dup", good, {"a": 0, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="2 distinct rows"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "classes", good, {"a": 0, "b": 1, "c": 2})
    with pytest.raises(ValueError, match="4 classes, but the student predicts num_classes=5"):
        LogitsStore(folder, num_classes=5)
    assert len(LogitsStore(folder, num_classes=4)) == 3
    folder = write_store(tmp_path / "list", good, [0, 1, 2])
    with pytest.raises(ValueError, match="must be a JSON object"):
        LogitsStore(folder)
    folder = write_store(tmp_path / "vec", np.zeros(3, np.float32), {})
    with pytest.raises(ValueError, match=r"float array \[clips, classes\]"):
        LogitsStore(folder)


def test_logits_store_refuses_pickles_and_corrupt_files(tmp_path):
    folder = tmp_path / "pickle"
    folder.mkdir()
    np.save(folder / "logits.npy", np.array([[{"x": 1}]], dtype=object), allow_pickle=True)
    (folder / "index.json").write_text('{"a": 0}')
    with pytest.raises(ValueError, match="pickled objects are refused"):
        LogitsStore(folder)
    index = {str(i): i for i in range(50)}
    folder = write_store(tmp_path / "cut", np.ones((50, 4), np.float32), index)
    data = (folder / "logits.npy").read_bytes()
    (folder / "logits.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npy"):
        LogitsStore(folder)
    nan = np.zeros((2, 3), np.float32)
    nan[1, 0] = np.nan
    store = LogitsStore(write_store(tmp_path / "nan", nan, {"a": 0, "b": 1}))
    assert store(None, None, ["a"]).mask.tolist() == [True]
    with pytest.raises(ValueError, match=r"non-finite values for clip ids \['b'\]"):
        store(None, None, ["a", "b"])
    with pytest.raises(ValueError, match="needs the clip ids"):
        store(torch.zeros(1, 4))


# ---------------------------------------------------------------------------
# Recipe teachers: build_teacher and the AST teacher of knowledge flexification
# ---------------------------------------------------------------------------
def test_ast_teacher_is_the_checkpoint_on_its_own_fbank(tmp_path, device):
    torch.manual_seed(0)
    encoder = ASTEncoder("tiny224", depth=1, input_tdim=64, fstride=16, tstride=16)
    model = ASTClassifier(encoder, ASTHead(192, 4)).eval()
    path = tmp_path / "fixed.pt"
    torch.save(model.state_dict(), path)
    teacher = _build_ast_teacher(path, target_length=64, mean=-6.8, std=5.6, num_classes=4)
    assert teacher.source == str(path)
    wavs, lens = torch.randn(2, 8000).to(device), torch.tensor([1.0, 0.5]).to(device)
    logits, mask = teacher.to(device)(wavs, lens)
    feats = KaldiFbank(target_length=64, mean=-6.8, std=5.6).to(device)(wavs, lens)
    torch.testing.assert_close(logits, model.to(device)(feats))
    assert mask.all() and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(ValueError, match="has 4 classes, but the student predicts num_classes=5"):
        _build_ast_teacher(path, target_length=64, num_classes=5)


def test_build_teacher_sources_folds_and_errors(tmp_path):
    torch.save(DyMN(num_classes=3, width_mult=0.4).state_dict(), tmp_path / "t_fold2.pt")
    teacher = build_teacher(
        str(tmp_path / "t_fold{fold}.pt"), num_classes=3, fold=2, width_mult=0.4
    )
    assert isinstance(teacher, OnlineTeacher) and teacher.source == str(tmp_path / "t_fold2.pt")
    np.save(tmp_path / "logits.npy", np.zeros((1, 3), dtype=np.float16))
    (tmp_path / "index.json").write_text('{"a": 0}')
    store = build_teacher(teacher_logits_dir=str(tmp_path), num_classes=3, width_mult=0.4)
    assert isinstance(store, LogitsStore) and store.source == str(tmp_path)
    assert build_teacher("", "", required=False) is None
    with pytest.raises(ValueError, match="got neither"):
        build_teacher("", "")
    with pytest.raises(ValueError, match="got both"):
        build_teacher(str(tmp_path / "t_fold2.pt"), str(tmp_path))
    with pytest.raises(ValueError, match="has no \\{fold\\} placeholder"):
        build_teacher(str(tmp_path / "t_fold2.pt"), fold=2, width_mult=0.4)
    with pytest.raises(FileNotFoundError, match="teacher_checkpoint for fold 1 not found"):
        build_teacher(str(tmp_path / "t_fold{fold}.pt"), fold=1, width_mult=0.4)
    with pytest.raises(ValueError, match="has 3 classes, but the student predicts num_classes=4"):
        build_teacher(str(tmp_path / "t_fold2.pt"), num_classes=4, width_mult=0.4)
    with pytest.raises(ValueError, match="has 3 classes, but the student predicts"):
        build_teacher(teacher_logits_dir=str(tmp_path), num_classes=4)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_teacher(str(tmp_path / "t_fold2.pt"), kind="cnn")


def test_dymn_teacher_sources_and_errors(tmp_path):
    weights = tmp_path / "teacher.pt"
    torch.save(DyMN(num_classes=4, width_mult=0.4).state_dict(), weights)
    teacher = build_dymn_teacher(weights=weights, width_mult=0.4, sample_rate=16000)
    assert isinstance(teacher.front_end.resampler, nn.Module)  # 16 kHz -> 32 kHz
    assert teacher.source == str(weights)
    with pytest.raises(ValueError, match="has 4 classes, but the student predicts num_classes=5"):
        build_dymn_teacher(weights=weights, width_mult=0.4, num_classes=5)
    with pytest.raises(ValueError, match="exactly one of name"):
        build_dymn_teacher(name="dymn04_as", checkpoint_dir=tmp_path, weights=weights)
    with pytest.raises(FileNotFoundError, match="dymn04_as.pt"):
        build_dymn_teacher(name="dymn04_as", checkpoint_dir=tmp_path)


def test_one_class_count_check_names_the_source():
    _check_teacher_classes(3, None, "t.pt")  # nothing to check against
    with pytest.raises(ValueError, match="teacher 't.pt' has 3 classes, but the student"):
        _check_teacher_classes(3, 4, "t.pt")


# ---------------------------------------------------------------------------
# Teacher logits carried by the batch (WebDataset shards written with a teacher)
# ---------------------------------------------------------------------------
def test_batch_logits_read_the_batch_and_check_the_classes():
    import speechbrain as sb

    from fastast_plugin.training.teachers import BatchLogits

    batch = sb.dataio.batch.PaddedBatch(
        [
            {"teacher_logits": torch.tensor([1.0, -2.0]), "teacher_mask": torch.tensor([1.0])},
            {"teacher_logits": torch.zeros(2), "teacher_mask": torch.tensor([0.0])},
        ]
    )
    teacher = build_teacher(teacher_in_shards=True, num_classes=2)
    logits, mask = teacher(batch)
    assert logits.tolist() == [[1.0, -2.0], [0.0, 0.0]] and mask.tolist() == [True, False]
    with pytest.raises(ValueError, match="has 2 classes, but the student predicts num_classes=3"):
        BatchLogits(num_classes=3)(batch)
    with pytest.raises(ValueError, match="the batches carry no teacher_logits"):
        teacher(sb.dataio.batch.PaddedBatch([{"id": "a"}]))
    with pytest.raises(ValueError, match="leave teacher_checkpoint"):
        build_teacher(teacher_checkpoint="t.pt", teacher_in_shards=True)
