"""A recipe started from a registry name: ``--init_from=<timm tag>`` resolved offline from the hub cache.

Authors
 * fastast developers 2026
"""

import hashlib
import os
import shutil

import timm
import torch
from recipe_helpers import TINY_MODEL, run_recipe
from safetensors.torch import save_file

from fastast_plugin.synthetic import CLASSES, write_speech_commands

DEIT_TAG = "deit_tiny_distilled_patch16_224.fb_in1k"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def test_speech_commands_recipe_starts_from_a_registry_name(tmp_path, monkeypatch):
    torch.manual_seed(0)
    sd = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, depth=2).state_dict()
    # timm's hub repository of the tag, laid out as huggingface_hub caches it
    repo = tmp_path / "hf" / "hub" / f"models--timm--{DEIT_TAG}"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    save_file(sd, str(tmp_path / "model.safetensors"))
    blob = repo / "blobs" / hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    blob.parent.mkdir()
    shutil.copyfile(tmp_path / "model.safetensors", blob)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / "model.safetensors")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FASTAST_CACHE", raising=False)

    data = tmp_path / "speech_commands_v0.02"
    write_speech_commands(str(data), CLASSES, speakers=10)
    out = tmp_path / "results"
    run_recipe(
        "SpeechCommands",
        [
            "hparams/tome_ast.yaml", f"--data_folder={data}", f"--output_folder={out}",
            "--number_of_epochs=1", f"--n_classes={len(CLASSES)}", "--batch_size=8",
            "--lr=1e-30",  # below every weight's ulp: model.pt holds the initial weights
            *TINY_MODEL, f"--init_from={DEIT_TAG}",
        ],
        tmp_path / "run.out",
    )
    model = torch.load(out / "model.pt", weights_only=True)
    for key in ("norm.weight", "cls_token", "dist_token", "blocks.1.mlp.fc2.weight"):
        assert torch.equal(model[f"encoder.{key}"], sd[key]), key
