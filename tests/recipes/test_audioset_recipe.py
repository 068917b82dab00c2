"""The AudioSet recipe end to end on generated data (CPU): mAP above chance, DDP mAP, shards, balanced sampling.

Authors
 * fastast developers 2026
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import ruamel.yaml
from recipe_helpers import RECIPES, TINY_MODEL, TORCHRUN, recipe_env, run_recipe

from fastast_plugin.data.synthetic import CLASSES, write_audioset

# Learnable in a few hundred steps: no mixup or masks, a short warm-up
FAST_TRAINING = (
    f"--n_classes={len(CLASSES)}",
    "--lr=0.001",
    "--warmup_steps=20",
    "--lr_decay_every=1",
    "--mixup_prob=0",
    "--freq_mask=0",
    "--time_mask=0",
)


def read(path):
    return Path(path).read_text() if Path(path).exists() else ""


def chance_map(manifest):
    """Expected mAP of random scores: the mean over classes of their prevalence."""
    entries = json.loads(read(manifest))
    labels = [set(e["labels"]) for e in entries.values()]
    mids = sorted(set().union(*labels))
    return sum(sum(m in ls for ls in labels) / len(labels) for m in mids) / len(mids)


def averaged_epochs(save_folder):
    yaml = ruamel.yaml.YAML(typ="safe")
    metas = [yaml.load(p.read_text()) for p in Path(save_folder).glob("CKPT+*/CKPT.yaml")]
    return [m["averaged_epochs"] for m in metas if "averaged" in m]


def test_trains_to_a_map_far_above_chance_and_tests_the_averaged_epochs(tmp_path):
    data = tmp_path / "audioset"
    data.mkdir()
    write_audioset(str(data), {"balanced_train": 320, "eval": 80}, missing=2, unreadable=1)
    out = tmp_path / "results"
    run_recipe(
        "AudioSet",
        [
            "hparams/tome_ast.yaml",
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--number_of_epochs=4",
            "--batch_size=16",
            "--lr_decay_start=3",
            "--average_last_epochs=2",
            "--r=4",
            *TINY_MODEL,
            *FAST_TRAINING,
        ],
        tmp_path / "train.out",
    )
    record = json.loads(read(out / "test_metrics.json"))
    chance = chance_map(out / "prepared" / "eval.json")
    print(
        f"\nAudioSet (generated, 4 classes): test mAP {record['mAP']:.3f} (chance {chance:.3f}), "
        f"d-prime {record['d_prime']:.2f}, {record['clips_per_s']:.0f} clips/s"
    )
    assert record["clips"] == 77  # 80 segments, 2 without audio, 1 unreadable
    assert record["mAP"] >= chance + 0.25, (record, chance)
    assert record["d_prime"] > 0.5
    assert averaged_epochs(out / "save") == [[3, 4]]
    report = json.loads(read(out / "prepared" / "report.json"))
    assert report["eval"]["missing"] == 2 and report["eval"]["unreadable"] == 1
    assert (out / "export").is_dir()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("audioset_small")
    data = root / "audioset"
    data.mkdir()
    write_audioset(str(data), {"balanced_train": 32, "eval": 21}, duration=0.5)
    return root, data


def small_args(data, out, *extra):
    # (no --r: torchrun's parser would take it for an abbreviation of its own options)
    return [
        "hparams/ast.yaml",
        f"--data_folder={data}",
        f"--output_folder={out}",
        "--number_of_epochs=2",
        "--batch_size=4",
        "--average_last_epochs=2",
        *TINY_MODEL,
        *FAST_TRAINING,
        *extra,
    ]


def test_two_gloo_processes_give_the_map_of_one_process_on_the_same_checkpoint(small):
    """Balanced sampling under DDP (SpeechBrain's DistributedSamplerWrapper) and mAP over ranks."""
    root, data = small
    out = root / "ddp"
    args = small_args(data, out, "--balanced_sampling=True")
    run_recipe(
        "AudioSet", [*args, "--distributed_backend=gloo"], root / "ddp.out", launcher=TORCHRUN
    )
    record = json.loads(read(out / "test_metrics.json"))
    assert record["world_size"] == 2 and record["clips"] == 21 and record["rank_clips"] == [11, 10]
    single_file = out / "single.json"
    run_recipe(
        "AudioSet",
        [*args, "--test_only", f"--test_metrics_file={single_file}"],
        root / "single.out",
    )
    single = json.loads(read(single_file))
    assert single["world_size"] == 1 and single["clips"] == 21
    for key in ("mAP", "mAUC", "d_prime", "loss"):
        assert single[key] == pytest.approx(record[key], rel=1e-5, abs=1e-6), key
    assert averaged_epochs(out / "save") == [[1, 2]]


def test_two_processes_train_from_webdataset_shards(small):
    pytest.importorskip("webdataset")
    root, data = small
    out = root / "shards_run"
    prepared = root / "prepared"
    # the prepared training manifest, then 4 shards of 8 clips
    spec = importlib.util.spec_from_file_location(
        "audioset_prepare", RECIPES / "AudioSet" / "audioset_prepare.py"
    )
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    manifests = prepare.prepare_audioset(str(data), str(root / "manifests"))
    subprocess.run(
        [
            sys.executable,
            "make_shards.py",
            "write",
            manifests["train"],
            str(prepared),
            "--clips_per_shard=8",
        ],
        cwd=RECIPES / "AudioSet",
        env=recipe_env(),
        check=True,
        capture_output=True,
    )
    assert json.loads(read(prepared / "shards.json"))["clips_per_shard"] == [8] * 4
    run_recipe(
        "AudioSet",
        [
            *small_args(data, out, f"--train_shards={prepared}", "--shuffle_buffer=16"),
            "--distributed_backend=gloo",
        ],
        root / "shards.out",
        launcher=TORCHRUN,
    )
    log = read(out / "log.txt")
    assert (
        "Training from 4 shards" in log
        and "4 batches of 4 per process and epoch, 2 processes" in log
    )
    train_log = read(out / "train_log.txt")
    assert train_log.count("valid mAP") == 2
    record = json.loads(read(out / "test_metrics.json"))
    assert record["world_size"] == 2 and record["clips"] == 21


@pytest.mark.parametrize("name", ["ast.yaml", "tome_ast.yaml", "tome_ast_kd.yaml", "flexiast.yaml"])
def test_every_yaml_loads_with_ast_audioset_settings(name, tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    from fastast_plugin.training.brain import BrainSettings
    from fastast_plugin.training.losses import MultiLabelKDLoss

    overrides = {
        "data_folder": str(tmp_path),
        "output_folder": str(tmp_path / "out"),
        "model_size": "tiny224",
        "depth": 1,
        "init_from": "",
    }  # random init: no weights are fetched in this process
    if name == "tome_ast_kd.yaml":
        overrides["teacher_in_shards"] = True
    with open(RECIPES / "AudioSet" / "hparams" / name, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    settings = BrainSettings.from_mapping(hparams["brain_settings"])
    assert (settings.n_classes, settings.loss, settings.multilabel, settings.monitor) == (
        527,
        "bce",
        True,
        "mAP",
    )
    assert settings.average_last_epochs == 20
    features = hparams["compute_features"]
    assert (features.target_length, features.mean, features.std) == (1024, -4.2677393, 4.5689974)
    augment = hparams["spec_augment"]
    assert (augment.freq_mask_width, augment.time_mask_width) == (48, 192)
    assert hparams["mixup"].prob == 0.5 and hparams["batch_size"] == 12
    schedule = settings.lr_schedule
    assert (
        schedule.lr,
        schedule.warmup_steps,
        schedule.decay_start,
        schedule.decay_every,
        schedule.decay_factor,
    ) == (5e-5, 1000, 10, 5, 0.5)
    if name == "tome_ast_kd.yaml":
        assert isinstance(settings.kd_loss, MultiLabelKDLoss) and settings.kd_loss.kd_lambda == 0.1
        assert settings.teacher.reads_batch


def test_distillation_from_a_logits_store_keyed_by_youtube_id(small):
    import numpy as np

    root, data = small
    spec = importlib.util.spec_from_file_location(
        "audioset_prepare", RECIPES / "AudioSet" / "audioset_prepare.py"
    )
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    manifests = prepare.prepare_audioset(str(data), str(root / "kd_manifests"))
    entries = json.loads(read(manifests["train"]))
    ids = sorted(entries)[:-3]  # three clips without teacher logits
    store = root / "store"
    store.mkdir()
    logits = [
        [4.0 if f"/m/0fa{c}" in entries[i]["labels"] else -4.0 for c in range(4)] for i in ids
    ]
    np.save(store / "logits.npy", np.array(logits, dtype=np.float32))
    (store / "index.json").write_text(json.dumps({clip_id: row for row, clip_id in enumerate(ids)}))
    out = root / "kd"
    run_recipe(
        "AudioSet",
        [
            "hparams/tome_ast_kd.yaml",
            f"--data_folder={data}",
            f"--output_folder={out}",
            "--number_of_epochs=1",
            "--batch_size=4",
            "--average_last_epochs=0",
            f"--teacher_logits_dir={store}",
            *TINY_MODEL,
            *FAST_TRAINING,
        ],
        root / "kd.out",
    )
    line = next(
        row for row in read(out / "train_log.txt").splitlines() if row.startswith("epoch: 1")
    )
    assert "train kd_clips: 29" in line and "train kd_missing: 3" in line, line
    record = json.loads(read(out / "test_metrics.json"))
    assert record["teacher"] == str(store) and record["clips"] == 21
