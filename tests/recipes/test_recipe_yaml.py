"""The recipe YAMLs load as a user's run loads them: Brain settings, ``r`` schedules, default weights.

Authors
 * fastast developers 2026
"""

import dataclasses
import json
import subprocess
import sys

import pytest
import ruamel.yaml
import torch
from hyperpyyaml import load_hyperpyyaml
from recipe_helpers import DEFAULT_INIT, RECIPES, recipe_env

from fastast_plugin.models.merge import token_counts
from fastast_plugin.training.brain import BrainSettings
from fastast_plugin.weights import registry

YAMLS = sorted(RECIPES.glob("*/hparams/*.yaml"))
# The encoder settings a checkpoint must fit (patch geometry, prefix tokens)
GEOMETRY = ("fstride", "tstride", "patch_size", "flexible", "num_prefix_tokens")


def top_level(path):
    """The YAML's top-level settings, as written (no object is built)."""
    return ruamel.yaml.YAML(typ="rt").load(path.read_text())


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_brain_settings_are_known_keys(path):
    settings = top_level(path)["brain_settings"]
    allowed = {field.name for field in dataclasses.fields(BrainSettings)}
    assert set(settings) <= allowed, sorted(set(settings) - allowed)
    assert "n_classes" in settings


@pytest.mark.parametrize("recipe", ["SpeechCommands", "ESC50"])
def test_r_schedule_with_inflection_from_the_yaml_decreases(recipe, tmp_path):
    """``r: [16, -1.0]`` is ToMe's (r, inflection) schedule: decreasing merges per block."""
    overrides = {
        "data_folder": str(tmp_path),
        "output_folder": str(tmp_path / "out"),
        "model_size": "tiny224",
        "depth": 4,
        "r": [16, -1.0],
        "n_classes": 3,  # train.py sets it from the prepared labels
        "init_from": "",  # random init: no weights are fetched in this process
    }
    with open(RECIPES / recipe / "hparams" / "tome_ast.yaml", encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    encoder = hparams["embedding_model"]
    schedule = list(encoder.merge_schedule())
    assert len(schedule) == 4 and schedule[0] > schedule[-1]
    assert all(a >= b for a, b in zip(schedule, schedule[1:]))
    assert sum(schedule) > 0
    counts = token_counts(encoder.num_tokens, schedule, encoder.num_prefix_tokens)
    assert counts[-1] == encoder.num_tokens - sum(schedule)
    assert isinstance(BrainSettings.from_mapping(hparams["brain_settings"]), BrainSettings)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_init_from_names_the_recipes_documented_start(path):
    """AST's starts: ImageNet DeiT-B/384 for Speech Commands and AudioSet, AudioSet AST for
    ESC-50; FlexiAST's ImageNet ViT-B/16 at 224 px for VoxCeleb; '' (random) for scratch YAMLs."""
    settings = top_level(path)
    if path.name.endswith("_scratch.yaml"):
        assert settings["init_from"] == ""
        return
    assert settings["init_from"] == DEFAULT_INIT[path.parts[-3]]
    entry = registry.find(settings["init_from"])
    assert entry is not None and entry.name == settings["init_from"]  # the full name, not an alias
    assert entry.architecture["model_size"] == settings["model_size"]


# Builds, offline, each YAML's encoder (its geometry, tiny width) from its default init_from.
LOAD_DEFAULTS = """
import json, sys, torch
from fastast_plugin.models.ast import ASTEncoder
cases = json.loads(sys.argv[1])
torch.save({case: ASTEncoder("tiny224", depth=2, input_tdim=128, **kwargs).cls_token
            for case, kwargs in cases.items()}, sys.argv[2])
"""


def test_every_default_start_loads_into_its_yamls_encoder(pretrained_cache, tmp_path):
    """Each YAML's patch geometry and prefix tokens fit its default weights (fixed-patch
    encoders the checkpoint's strides, flexible ones any), read from the cache by name."""
    cases = {}
    for path in YAMLS:
        settings = top_level(path)
        if settings["init_from"]:
            geometry = {key: settings[key] for key in GEOMETRY if key in settings}
            cases[f"{path.parts[-3]}/{path.name}"] = {
                "init_from": settings["init_from"],
                **geometry,
            }
    assert len(cases) == 15  # 4 YAMLs in 3 recipes, 3 in VoxCeleb
    out = tmp_path / "cls_tokens.pt"
    run = subprocess.run(
        [sys.executable, "-c", LOAD_DEFAULTS, json.dumps(cases), str(out)],
        env=recipe_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for case, cls_token in torch.load(out, weights_only=True).items():
        source = pretrained_cache.weights[cases[case]["init_from"]]
        expected = source.get("cls_token", source.get("module.v.cls_token"))
        assert torch.equal(cls_token, expected), case
