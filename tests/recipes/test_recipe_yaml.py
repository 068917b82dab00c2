"""The recipe YAMLs load as a user's run loads them: Brain settings, and ``r`` schedules.

Authors
 * fastast developers 2026
"""

import dataclasses

import pytest
import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml
from recipe_helpers import RECIPES

from fastast_plugin.brain import BrainSettings
from fastast_plugin.merge import token_counts

YAMLS = sorted(RECIPES.glob("*/hparams/*.yaml"))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_brain_settings_are_known_keys(path):
    settings = ruamel.yaml.YAML(typ="rt").load(path.read_text())["brain_settings"]
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
