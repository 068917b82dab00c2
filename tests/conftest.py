"""Shared test options and fixtures: ``--device`` as in SpeechBrain's own test suite.

Fixtures shared by several test files live here (one copy); each file keeps
only the helpers it alone uses.
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu")
    parser.addoption(
        "--device-tests-only",
        action="store_true",
        help="run only the tests that take the device fixture (tools/gpu_check.sh)",
    )


def pytest_collection_modifyitems(config, items):
    """``--device-tests-only``: deselect every test that does not use ``device``."""
    if not config.getoption("--device-tests-only"):
        return
    # fixturenames holds the fixtures a test uses through other fixtures too
    uses = [item for item in items if "device" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in uses])
    items[:] = uses


@pytest.fixture
def device(request):
    return request.config.getoption("--device")


# ----------------------------------------------------------------------
# Training helpers (shared by the unit and integration tests of brain.py,
# recipe.py and the tiny trainings)
# ----------------------------------------------------------------------
@pytest.fixture
def tiny_brain():
    """``make(device, flexible="none", checkpointer=None, **settings)``: a 1-block AST Brain.

    ``tiny224`` with 16x16 patches on 32 frames (64 when flexible), 3
    classes, Adam at 1e-3; ``settings`` are Brain settings (``n_classes``
    defaults to 3).
    """
    import torch

    from fastast_plugin.models.ast import ASTEncoder, ASTHead
    from fastast_plugin.models.features import KaldiFbank
    from fastast_plugin.training.brain import AudioClassifierBrain

    def make(device, flexible="none", checkpointer=None, **settings):
        torch.manual_seed(0)
        frames = 32 if flexible == "none" else 64
        modules = {
            "compute_features": KaldiFbank(target_length=frames, mean=-6.8, std=5.6),
            "embedding_model": ASTEncoder(
                "tiny224",
                input_tdim=frames,
                depth=1,
                fstride=16,
                tstride=16,
                flexible=flexible,
            ),
            "classifier": ASTHead(192, 3),
        }
        return AudioClassifierBrain(
            modules,
            opt_class=lambda params: torch.optim.Adam(params, lr=1e-3),
            hparams={"brain_settings": {"n_classes": 3, **settings}},
            run_opts={"device": device, "noprogressbar": True},
            checkpointer=checkpointer,
        )

    return make


@pytest.fixture
def clip_batch():
    """``make(n=6, seed=0)``: a PaddedBatch of n random clips of 3 lengths, labels ``i % 3``."""
    import speechbrain as sb
    import torch

    def make(n=6, seed=0):
        generator = torch.Generator().manual_seed(seed)
        items = [
            {
                "id": f"clip{i}",
                "sig": torch.randn(4000 - 300 * (i % 3), generator=generator),
                "label_encoded": torch.tensor([i % 3]),
            }
            for i in range(n)
        ]
        return sb.dataio.batch.PaddedBatch(items)

    return make


@pytest.fixture
def clip_dataset():
    """``make(n=12, samples=4000)``: a DynamicItemDataset of n random clips, labels ``i % 3``."""
    import speechbrain as sb
    import torch

    def make(n=12, samples=4000):
        data = {
            f"clip{i}": {"sig": torch.randn(samples), "label_encoded": torch.tensor([i % 3])}
            for i in range(n)
        }
        return sb.dataio.dataset.DynamicItemDataset(
            data, output_keys=["id", "sig", "label_encoded"]
        )

    return make


# ----------------------------------------------------------------------
# AST model and checkpoint helpers (shared by the unit tests of ast.py,
# flexi.py, weights.py and checkpoints.py)
# ----------------------------------------------------------------------
HF_AST_SMALL = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "max_length": 128,
    "num_mel_bins": 128,
    "frequency_stride": 10,
    "time_stride": 10,
    "num_labels": 5,
}


@pytest.fixture
def block_token_counts():
    """``count(encoder, feats)``: tokens leaving each block of an encoder."""
    import torch

    def count(encoder, feats):
        counts = []
        hooks = [
            block.register_forward_hook(lambda m, i, out: counts.append(out[0].shape[1]))
            for block in encoder.blocks
        ]
        with torch.no_grad():
            encoder(feats)
        for hook in hooks:
            hook.remove()
        return counts

    return count


@pytest.fixture
def pos_grid():
    """``grid(pos, (f, t), prefix=2)``: [1, prefix + f*t, D] -> [1, D, f, t] as AST lays it out."""

    def grid(pos, shape, prefix=2):
        f, t = shape
        return pos[:, prefix:].transpose(1, 2).reshape(1, -1, f, t)

    return grid


HF_PREFIX = "audio_spectrogram_transformer."
QKV_NAMES = ("query", "key", "value")


def hf_to_original(hf, depth):
    """HF hub names -> original AST DataParallel layout (written here, apart
    from the library, so that the test checks the library's mapping)."""
    import torch

    emb = HF_PREFIX + "embeddings."
    out = {
        "module.v.cls_token": hf[emb + "cls_token"],
        "module.v.dist_token": hf[emb + "distillation_token"],
        "module.v.pos_embed": hf[emb + "position_embeddings"],
    }
    for p in ("weight", "bias"):
        proj = hf[emb + "patch_embeddings.projection." + p]
        out["module.v.patch_embed.proj." + p] = proj
        out["module.v.norm." + p] = hf[HF_PREFIX + "layernorm." + p]
        out["module.mlp_head.0." + p] = hf["classifier.layernorm." + p]
        out["module.mlp_head.1." + p] = hf["classifier.dense." + p]
        for i in range(depth):
            src, dst = f"{HF_PREFIX}encoder.layer.{i}.", f"module.v.blocks.{i}."
            qkv = [f"{src}attention.attention.{n}.{p}" for n in QKV_NAMES]
            out[dst + "attn.qkv." + p] = torch.cat([hf[k] for k in qkv])
            out[dst + "attn.proj." + p] = hf[src + "attention.output.dense." + p]
            out[dst + "norm1." + p] = hf[src + "layernorm_before." + p]
            out[dst + "norm2." + p] = hf[src + "layernorm_after." + p]
            out[dst + "mlp.fc1." + p] = hf[src + "intermediate.dense." + p]
            out[dst + "mlp.fc2." + p] = hf[src + "output.dense." + p]
    dim = hf[emb + "cls_token"].shape[-1]
    for name in ("head", "head_dist"):  # DeiT's ImageNet heads, to be dropped
        out[f"module.v.{name}.weight"] = torch.randn(1000, dim)
        out[f"module.v.{name}.bias"] = torch.randn(1000)
    return out


@pytest.fixture
def hf_ast():
    """Builders of small Hugging Face AST models (skipped without transformers).

    ``hf_ast.model(attn="sdpa", **config)``: a random
    ``ASTForAudioClassification`` (weights perturbed off their init), in eval
    mode; ``hf_ast.save(model, folder)``: ``save_pretrained`` and return the
    on-disk (hub-named) tensors.
    """
    import types

    import torch

    transformers = pytest.importorskip("transformers")

    def model(attn="sdpa", **config):
        torch.manual_seed(0)
        config = transformers.ASTConfig(**{**HF_AST_SMALL, **config})
        hf = transformers.ASTForAudioClassification._from_config(config, attn_implementation=attn)
        with torch.no_grad():
            for p in hf.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        return hf.eval()

    def save(hf, folder):
        from safetensors.torch import load_file

        hf.save_pretrained(folder)
        return load_file(str(folder / "model.safetensors"))

    return types.SimpleNamespace(model=model, save=save, to_original=hf_to_original)


@pytest.fixture(scope="session")
def deit_file(tmp_path_factory):
    """A timm DeiT-tiny-distilled checkpoint at 384 px (24x24 grid), depth 1:
    ``(path, state_dict)``, nested under "model" as DeiT's own releases."""
    import torch

    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(
        "deit_tiny_distilled_patch16_224", pretrained=False, img_size=384, depth=1
    )
    sd = {k: v + 0.01 * torch.randn_like(v) for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("deit") / "deit_tiny_distilled_384.pth"
    torch.save({"model": sd}, path)
    return path, sd


@pytest.fixture(scope="session")
def original_ast():
    """``make(input_tdim, n_classes, depth=1)``: a tiny AST checkpoint (``tiny224``,
    strides 10/10, seed 0) in the original layout (DataParallel names, ``mlp_head``)."""
    import torch

    from fastast_plugin.models.ast import ASTEncoder

    def make(input_tdim, n_classes, depth=1):
        torch.manual_seed(0)
        enc = ASTEncoder("tiny224", depth=depth, input_tdim=input_tdim)
        sd = {"module.v." + k: v for k, v in enc.state_dict().items()}
        sd["module.mlp_head.0.weight"] = torch.rand(enc.embed_dim) + 0.5
        sd["module.mlp_head.0.bias"] = torch.randn(enc.embed_dim)
        sd["module.mlp_head.1.weight"] = torch.randn(n_classes, enc.embed_dim)
        sd["module.mlp_head.1.bias"] = torch.randn(n_classes)
        return sd

    return make


@pytest.fixture(scope="session")
def hub_cache_repo():
    """``put(hub, repo_id, files, revision=...)``: put ``files`` {name: path} into
    the hub cache folder ``hub`` as huggingface_hub lays it out (``blobs/<sha256>``,
    ``snapshots/<rev>/<name>`` links, ``refs/main``); returns the snapshot folder."""
    import hashlib
    import os
    import shutil
    from pathlib import Path

    def put(hub, repo_id, files, revision="0123456789abcdef0123456789abcdef01234567"):
        repo = Path(hub) / f"models--{repo_id.replace('/', '--')}"
        (repo / "blobs").mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(revision)
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True)
        for name, path in files.items():
            blob = repo / "blobs" / hashlib.sha256(Path(path).read_bytes()).hexdigest()
            shutil.copyfile(path, blob)
            os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
        return snapshot

    return put


# ----------------------------------------------------------------------
# Flexible-patch encoders (shared by the unit tests of flexi.py and sweep.py)
# ----------------------------------------------------------------------
@pytest.fixture
def flexi_encoder():
    """``build(depth=1, tdim=128, flexible="both", **kwargs)``: a small
    FlexiAST-style encoder (base 16x16 kernel, stride 16, 32 dims, 2 heads,
    seed 0) in eval mode; ``kwargs`` override ``ASTEncoder`` arguments."""
    import torch

    from fastast_plugin.models.ast import ASTEncoder

    def build(depth=1, tdim=128, flexible="both", **kwargs):
        torch.manual_seed(0)
        kwargs = {"embed_dim": 32, "num_heads": 2, "fstride": 16, "tstride": 16, **kwargs}
        return ASTEncoder(
            "tiny224", depth=depth, input_tdim=tdim, flexible=flexible, **kwargs
        ).eval()

    return build


# ----------------------------------------------------------------------
# Two DDP ranks on the CPU (torchrun, gloo)
# ----------------------------------------------------------------------
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")


@pytest.fixture
def two_gloo_ranks(tmp_path):
    """Run a script under ``torchrun`` on two CPU ranks; return what each rank recorded.

    The script gets a folder as ``sys.argv[1]`` and writes ``rank<i>.json``
    there; the fixture fails the test with the output if torchrun fails.
    """
    import json
    import os
    import subprocess
    import sys

    def run(source):
        script = tmp_path / "two_ranks.py"
        script.write_text(source)
        env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        process = subprocess.run(
            [sys.executable, *TORCHRUN, str(script), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
        return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    return run
