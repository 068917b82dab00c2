"""The recipes start from their YAMLs' default ``init_from``: published weights by registry name.

Runs from the session's pre-filled cache (``conftest.pretrained_cache``),
offline: the trained model of a run with a learning rate below every
weight's ulp holds the encoder's initial weights, which must be the cached
checkpoint's, fitted to the tiny model's grid as AST (and, for flexible
encoders, FlexiAST) fit them. Without the cache and without network a
recipe stops with the registry's message naming what to fetch and where to
put it.

Authors
 * fastast developers 2026
"""

import socket

import pytest
import torch
import torch.nn.functional as F
from recipe_helpers import (
    AUDIOSET_AST,
    DEIT,
    TINY_AST_MODEL,
    TINY_MODEL,
    recipe_env,
    run_failing_recipe,
    run_recipe,
)

from fastast_plugin.data.synthetic import write_esc50, write_speech_commands

WORDS = ("yes", "no", "up")
CATEGORIES = ("dog", "rain")
FROZEN = ("--number_of_epochs=1", "--lr=1e-30")  # below the ulp of every non-zero weight
FROZEN_ATOL = 1e-25  # what such steps can move a zero (a bias) by
GRID = 8  # 128 mel bins x 128 frames at patch 16, strides 16: 8 x 8 patches


@pytest.fixture(scope="module")
def sc_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("sc") / "speech_commands_v0.02"
    write_speech_commands(str(data), WORDS, speakers=5, clips_per_speaker=2)
    return data


@pytest.fixture(scope="module")
def esc50_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("esc50") / "ESC-50-master"
    write_esc50(str(data), CATEGORIES, sources_per_fold=2, takes_per_source=1, duration=1.0)
    return data


def sc_args(yaml, data, out, *extra):
    return [
        f"hparams/{yaml}",
        f"--data_folder={data}",
        f"--output_folder={out}",
        f"--n_classes={len(WORDS)}",
        "--batch_size=4",
        *FROZEN,
        *TINY_MODEL,
        *extra,
    ]


def esc50_args(yaml, data, out, tiny, *extra):
    return [
        f"hparams/{yaml}",
        f"--data_folder={data}",
        f"--output_folder={out}",
        "--fold=1",
        f"--n_classes={len(CATEGORIES)}",
        "--batch_size=8",
        *FROZEN,
        *tiny,
        *extra,
    ]


def encoder_of(model_file):
    state = torch.load(model_file, weights_only=True)["model"]
    return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}


def patch_grid(pos_embed, prefix, grid):
    """``[1, dim, f, t]`` image of a positional embedding's patch part."""
    return pos_embed[:, prefix:].reshape(1, *grid, -1).permute(0, 3, 1, 2)


def assert_same_blocks(encoder, source, prefix=""):
    """Every transformer tensor of the checkpoint, unchanged."""
    names = [k for k in encoder if k.startswith(("blocks.", "norm.", "cls_token", "dist_token"))]
    assert len(names) == 2 * 12 + 4  # 2 blocks of 12 tensors, final norm, 2 prefix tokens
    for name in names:
        assert (encoder[name] - source[prefix + name]).abs().max() <= FROZEN_ATOL, name


@pytest.mark.parametrize("yaml", ["tome_ast.yaml", "flexiast.yaml"])
def test_speech_commands_starts_from_imagenet_deit_base384(
    yaml, sc_data, pretrained_cache, tmp_path
):
    """AST's ImageNet start, also for the flexible patch embedding of ``flexiast.yaml``."""
    deit = pretrained_cache.weights[DEIT]
    out = tmp_path / "out"
    no_sweep = ["--test_patch_sizes=[]"] if yaml == "flexiast.yaml" else []
    run_recipe("SpeechCommands", sc_args(yaml, sc_data, out, *no_sweep), tmp_path / "run.out")
    encoder = encoder_of(out / "model.pt")
    assert_same_blocks(encoder, deit)
    # AST: one input channel, the sum of the RGB kernels; a 24 x 24 ImageNet grid cut to its centre
    expected_kernel = deit["patch_embed.proj.weight"].sum(dim=1, keepdim=True)
    assert (encoder["patch_embed.proj.weight"] - expected_kernel).abs().max() <= 1e-6
    centre = patch_grid(deit["pos_embed"], 2, (24, 24))[..., 8:16, 8:16]
    assert torch.equal(patch_grid(encoder["pos_embed"], 2, (GRID, GRID)), centre)
    assert torch.equal(encoder["pos_embed"][:, :2], deit["pos_embed"][:, :2])


def test_esc50_starts_from_audioset_ast_for_every_fold(esc50_data, pretrained_cache, tmp_path):
    """AST's ESC-50 start: its AudioSet model at strides 10/10, the 101 time columns cut to 12."""
    ast = pretrained_cache.weights[AUDIOSET_AST]
    out = tmp_path / "out"
    run_recipe(
        "ESC50", esc50_args("ast.yaml", esc50_data, out, TINY_AST_MODEL), tmp_path / "run.out"
    )
    encoder = encoder_of(out / "fold_1" / "model.pt")
    assert_same_blocks(encoder, ast, prefix="module.v.")
    assert torch.equal(encoder["patch_embed.proj.weight"], ast["module.v.patch_embed.proj.weight"])
    centre = patch_grid(ast["module.v.pos_embed"], 2, (12, 101))[..., 44:56]
    assert torch.equal(patch_grid(encoder["pos_embed"], 2, (12, 12)), centre)


def test_esc50_flexiast_flexifies_audioset_ast(esc50_data, pretrained_cache, tmp_path):
    """FlexiAST's flexible patch embedding loads the 10/10 AudioSet AST: the grid its
    128 frames give at 10/10 (12 x 12, AST's cut) resampled to the 16/16 base grid."""
    ast = pretrained_cache.weights[AUDIOSET_AST]
    out = tmp_path / "out"
    args = esc50_args("flexiast.yaml", esc50_data, out, TINY_MODEL, "--test_patch_sizes=[]")
    run_recipe("ESC50", args, tmp_path / "run.out")
    encoder = encoder_of(out / "fold_1" / "model.pt")
    assert_same_blocks(encoder, ast, prefix="module.v.")
    assert torch.equal(encoder["patch_embed.proj.weight"], ast["module.v.patch_embed.proj.weight"])
    centre = patch_grid(ast["module.v.pos_embed"], 2, (12, 101))[..., 44:56]
    resampled = F.interpolate(
        centre, size=(GRID, GRID), mode="bilinear", antialias=True, align_corners=False
    )
    got = patch_grid(encoder["pos_embed"], 2, (GRID, GRID))
    assert (got - resampled).abs().max() <= 1e-6


def closed_port():
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_env(tmp_path):
    """An empty cache and no network (every proxied request is refused)."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    return recipe_env(
        FASTAST_CACHE=str(tmp_path / "empty_cache"),
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_OFFLINE="1",
        http_proxy=proxy,
        https_proxy=proxy,
        HTTP_PROXY=proxy,
        HTTPS_PROXY=proxy,
        no_proxy="",
        NO_PROXY="",
    )


def test_without_cache_or_network_the_recipes_name_what_to_fetch(sc_data, esc50_data, tmp_path):
    out = tmp_path / "sc"
    output = run_failing_recipe(
        "SpeechCommands",
        sc_args("tome_ast.yaml", sc_data, out),
        tmp_path / "sc.out",
        env=offline_env(tmp_path),
    )
    last = output.strip().splitlines()[-1]
    assert last.startswith(
        f"fastast_plugin.weights.registry.DownloadError: {DEIT}: could not fetch "
        f"https://huggingface.co/timm/{DEIT} "
    ), last
    assert f"huggingface-cli download timm/{DEIT}" in last
    assert str(tmp_path / "empty_cache" / "huggingface") in last
    assert not (out / "train_log.txt").exists()  # stopped before training

    out = tmp_path / "esc50"
    output = run_failing_recipe(
        "ESC50",
        esc50_args("tome_ast.yaml", esc50_data, out, TINY_AST_MODEL),
        tmp_path / "esc50.out",
        env=offline_env(tmp_path),
    )
    last = output.strip().splitlines()[-1]
    url = "https://www.dropbox.com/s/ca0b1v2nlxzyeb4/audioset_10_10_0.4593.pth?dl=1"
    assert last.startswith(
        f"fastast_plugin.weights.registry.DownloadError: could not download {url} "
    )
    assert last.endswith(
        f"download it elsewhere and put it at {tmp_path / 'empty_cache' / 'audioset_10_10_0.4593.pth'}"
    ), last
    assert not (out / "fold_1" / "train_log.txt").exists()
