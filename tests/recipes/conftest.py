"""Fixtures for the recipe tests: the recipes' prepare modules, and the pretrained weights they start from.

Every recipe YAML's default ``init_from`` names published weights
(``fastast_plugin.weights.registry``). ``pretrained_cache`` fills, once per session,
a cache with small checkpoints under those names, in the real formats and
layouts, shaped for ``recipe_helpers.TINY_MODEL`` (``tiny224``, 2 blocks),
and points the recipe subprocesses at it offline (``recipe_env``).

Authors
 * fastast developers 2026
"""

import importlib.util
from types import SimpleNamespace

import pytest
import timm
import torch
from recipe_helpers import AUDIOSET_AST, DEIT, PRETRAINED_ENV, RECIPES, VIT
from safetensors.torch import save_file

from fastast_plugin.weights import registry

TINY = {"embed_dim": 192, "num_heads": 3, "depth": 2}  # tiny224, 2 blocks


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sc_prepare():
    """``recipes/SpeechCommands/sc_prepare.py`` as a module."""
    return _load(RECIPES / "SpeechCommands" / "sc_prepare.py", "sc_prepare")


@pytest.fixture(scope="session")
def esc50_prepare():
    """``recipes/ESC50/esc50_prepare.py`` as a module."""
    return _load(RECIPES / "ESC50" / "esc50_prepare.py", "esc50_prepare")


def _timm_state_dict(architecture, seed):
    """timm's own model of a tag's architecture at tiny width and depth, randomly initialised."""
    torch.manual_seed(seed)
    return timm.create_model(architecture, pretrained=False, **TINY).state_dict()


@pytest.fixture(scope="session", autouse=True)
def pretrained_cache(tmp_path_factory, hub_cache_repo, original_ast):
    """The session's weights cache; recipe subprocesses read it offline.

    timm tags as timm's hub repositories hold them (``model.safetensors`` in
    a ``huggingface_hub`` cache, which the registry keeps under
    ``FASTAST_CACHE/huggingface``), AST's AudioSet model as its original
    ``.pth`` (DataParallel names, 527-class ``mlp_head``, 1024 frames at
    strides 10/10). ``HF_HUB_OFFLINE=1``: nothing is downloaded.

    Returns
    -------
    SimpleNamespace
        ``root`` (``FASTAST_CACHE``) and ``weights``: registry name -> the
        tensors written under it.
    """
    root = tmp_path_factory.mktemp("pretrained_cache")
    weights = {
        DEIT: _timm_state_dict("deit_base_distilled_patch16_384", seed=1),
        VIT: _timm_state_dict("vit_base_patch16_224", seed=2),
    }
    for tag, state_dict in weights.items():
        file = root / f"{tag}.safetensors"
        save_file(state_dict, str(file))
        repo = timm.models.get_pretrained_cfg(tag).hf_hub_id  # timm's hub repository of the tag
        hub_cache_repo(root / "huggingface", repo, {"model.safetensors": file})
        file.unlink()
    weights[AUDIOSET_AST] = original_ast(1024, 527, depth=TINY["depth"])
    torch.save(weights[AUDIOSET_AST], root / registry.find(AUDIOSET_AST).filename)
    PRETRAINED_ENV.update(
        FASTAST_CACHE=str(root), HF_HOME=str(root / "hf_home"), HF_HUB_OFFLINE="1"
    )
    yield SimpleNamespace(root=root, weights=weights)
    PRETRAINED_ENV.clear()
