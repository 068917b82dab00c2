"""Named weights without the internet: a local HTTP server, pre-filled hub caches.

Downloads are served by ``http.server`` on 127.0.0.1 (with ``Range``
support, and able to cut a response short); registry entries are pointed at
it by replacing them in ``registry.REGISTRY``. Hugging Face and timm names
resolve from a hub cache laid out as ``huggingface_hub`` lays it out, in a
subprocess with ``HF_HOME`` and ``HF_HUB_OFFLINE=1``, as a user runs them.

Authors
 * fastast developers 2026
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fastast_plugin import cli, registry
from fastast_plugin.data.labels import read_labels
from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.training.teachers import build_teacher
from fastast_plugin.weights.registry import ChecksumError, DownloadError, PretrainedWeights

REPO = Path(__file__).resolve().parents[3]
DEIT_TAG = "deit_tiny_distilled_patch16_224.fb_in1k"
HF_ID = "MIT/ast-finetuned-audioset-10-10-0.4593"


class _Handler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-``; the first response may be cut short."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        time.sleep(server.delay)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, asked = 0, self.headers.get("Range")
        if asked and server.ranges:
            start = int(asked.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if server.cut_first and len(server.requests) == 1:
            payload = payload[: len(payload) // 2]  # then the connection closes
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A file server on 127.0.0.1: ``files`` {path: bytes}, ``requests`` log, ``url(path)``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.ranges, httpd.cut_first = {}, [], True, False
    httpd.delay = 0.0
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty registry cache (FASTAST_CACHE)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FASTAST_CACHE", str(folder))
    return folder


def serve(server, monkeypatch, name, data, sha256=None, **changes):
    """Serve ``data`` at the entry ``name`` (replaced, or added from ``changes``)."""
    path = f"/files/{name}"
    server.files[path] = data
    entry = registry.REGISTRY.get(name) or PretrainedWeights(name, "url", "", **changes)
    entry = dataclasses.replace(entry, location=server.url(path), sha256=sha256)
    monkeypatch.setitem(registry.REGISTRY, name, entry)
    return entry


def saved(obj, tmp_path, safetensors=False):
    path = tmp_path / ("obj.safetensors" if safetensors else "obj.pth")
    save_file(obj, str(path)) if safetensors else torch.save(obj, path)
    return path.read_bytes()


# ----------------------------------------------------------------------
# Downloads by name
# ----------------------------------------------------------------------
def test_ast_pth_by_name_lands_in_cache_checked_and_loads(
    server, cache, monkeypatch, tmp_path, original_ast
):
    sd = original_ast(128, 35)
    data = saved(sd, tmp_path)
    serve(
        server,
        monkeypatch,
        "ast-speechcommands-10-10-0.9812",
        data,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    model = from_pretrained("ast-speechcommands")  # the alias
    cached = cache / "speechcommands_10_10_0.9812.pth"
    assert cached.read_bytes() == data and not list(cache.glob("*.part"))
    assert tuple(model.encoder.patch_embed.base_stride) == (10, 10)  # from the file name
    assert model.encoder.input_tdim == 128
    assert torch.equal(model.encoder.pos_embed, sd["module.v.pos_embed"])
    assert torch.equal(model.head.linear.weight, sd["module.mlp_head.1.weight"])
    from_pretrained("ast-speechcommands")
    assert len(server.requests) == 1  # the second time from the cache


def test_processes_resolving_a_name_at_once_download_it_once(server, cache, monkeypatch, tmp_path):
    """DDP ranks build their encoders together: one download, the others wait for it."""
    data = saved({"w": torch.arange(1000.0)}, tmp_path)
    serve(server, monkeypatch, "ast-speechcommands-10-10-0.9812", data)
    server.delay = 0.5  # every rank asks before the first download ends
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda _: registry.resolve("ast-speechcommands"), range(3)))
    assert len(set(paths)) == 1 and Path(paths[0]).read_bytes() == data
    assert len(server.requests) == 1


@pytest.mark.parametrize("safetensors", [False, True], ids=["pth", "safetensors"])
def test_deit_by_name_initialises_an_encoder(
    server, cache, monkeypatch, tmp_path, deit_file, safetensors
):
    _, sd = deit_file
    data = saved(sd if safetensors else {"model": sd}, tmp_path, safetensors)
    name = "test-deit"
    filename = "deit.safetensors" if safetensors else "deit.pth"
    serve(server, monkeypatch, name, data, filename=filename)
    encoder = ASTEncoder("tiny224", depth=1, input_tdim=128, init_from=name)
    assert (cache / filename).read_bytes() == data
    assert torch.equal(encoder.norm.weight, sd["norm.weight"])
    assert torch.equal(encoder.cls_token, sd["cls_token"])


def test_dymn_by_name_as_teacher_checkpoint(server, cache, monkeypatch, tmp_path):
    torch.manual_seed(0)
    dymn = DyMN(num_classes=527, width_mult=0.4)
    data = saved(dymn.state_dict(), tmp_path)
    serve(server, monkeypatch, "dymn04_as", data)
    # teacher_width says 1.0 (the YAML default); the name decides: 0.4
    teacher = build_teacher("dymn04_as", num_classes=527, width_mult=1.0)
    assert (cache / "dymn04_as.pt").read_bytes() == data
    for key, value in dymn.state_dict().items():
        assert torch.equal(teacher.model.state_dict()[key], value), key


def test_wrong_checksum_is_refused_naming_the_file(
    server, cache, monkeypatch, tmp_path, original_ast
):
    data = saved(original_ast(128, 35), tmp_path)
    serve(server, monkeypatch, "ast-speechcommands-10-10-0.9812", data, sha256="0" * 64)
    with pytest.raises(
        ChecksumError, match=r"speechcommands_10_10_0\.9812\.pth\.part.*expected 0{64}"
    ):
        from_pretrained("ast-speechcommands")
    # nothing half-trusted stays behind (the lock file may: filelock keeps it on purpose)
    assert not [p.name for p in cache.iterdir() if p.suffix != ".lock"]


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "restarted"])
def test_interrupted_download_is_recovered(
    server, cache, monkeypatch, tmp_path, ranges, original_ast
):
    data = saved(original_ast(128, 35), tmp_path)
    server.cut_first, server.ranges = True, ranges
    serve(
        server,
        monkeypatch,
        "ast-speechcommands-10-10-0.9812",
        data,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    path = registry.resolve("ast-speechcommands")
    assert Path(path).read_bytes() == data
    half = (len(data)) // 2
    assert [rng for _, rng in server.requests] == [None, f"bytes={half}-"]


def test_no_network_names_the_url_and_where_to_put_the_file(cache, monkeypatch, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/audioset_10_10_0.4593.pth"
    entry = registry.REGISTRY["ast-audioset-10-10-0.4593"]
    monkeypatch.setitem(registry.REGISTRY, entry.name, dataclasses.replace(entry, location=url))
    expected = f"could not download {url} .*put it at {cache / 'audioset_10_10_0.4593.pth'}"
    with pytest.raises(DownloadError, match=expected):
        from_pretrained("ast-audioset")
    assert cli.main(["weights", "--download", "ast-audioset"]) == 2
    assert url in capsys.readouterr().err


def test_flexiast_has_no_direct_link_and_takes_the_file(cache, tmp_path, original_ast):
    target = cache / "flexiast_audioset.pth"
    with pytest.raises(FileNotFoundError, match=f"no direct download link.*put it at {target}"):
        from_pretrained("flexiast-audioset")
    cache.mkdir()
    sd = original_ast(128, 527)
    torch.save(sd, target)
    model = from_pretrained("flexiast-audioset")
    assert torch.equal(model.encoder.pos_embed, sd["module.v.pos_embed"])


def test_weights_command_lists_and_downloads(server, cache, monkeypatch, tmp_path, capsys):
    data = saved(DyMN(num_classes=527, width_mult=0.4).state_dict(), tmp_path)
    serve(server, monkeypatch, "dymn04_as", data)
    assert cli.main(["weights"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:-1]}
    assert set(rows) == set(registry.REGISTRY)
    assert rows["ast-audioset-10-10-0.4593"][-4:] == ["527", "audioset", "BSD-3-Clause", "no"]
    assert rows["dymn04_as"][-1] == "no"
    assert cli.main(["weights", "--download", "dymn04_as"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "dymn04_as.pt")
    cli.main(["weights"])
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("dymn04_as ")
    )
    assert row.split() == ["dymn04_as", "DyMN", "x0.4", "527", "audioset", "MIT", "yes"]


def test_export_of_the_audioset_entry_has_readable_labels(
    server, cache, monkeypatch, tmp_path, original_ast
):
    data = saved(original_ast(1024, 527), tmp_path)
    serve(server, monkeypatch, "ast-audioset-10-10-0.4593", data)
    out = tmp_path / "out"
    assert cli.main(["export", "ast-audioset", str(out)]) == 0
    labels = read_labels(out / "label_encoder.txt")
    assert (len(labels), labels[0], labels[1], labels[-1]) == (
        527,
        "Speech",
        "Male speech, man speaking",
        "Field recording",
    )
    config = json.loads((out / "fastast_config.json").read_text())
    assert (config["features"]["mean"], config["features"]["std"]) == (AUDIOSET_MEAN, AUDIOSET_STD)
    assert config["multi_label"] is True


def test_audioset_labels_ship_with_the_package():
    path = registry.labels_file(registry.find("ast-audioset"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "index,mid,display_name"
    assert lines[1] == '0,/m/09x0r,"Speech"'
    assert lines[-1] == '526,/m/07hvw1,"Field recording"'
    assert len(read_labels(path)) == len(lines) - 1 == 527


def test_timm_tags_are_timm_pretrained_configs():
    from timm.models import get_pretrained_cfg

    for entry in registry.REGISTRY.values():
        if entry.kind == "timm":
            cfg = get_pretrained_cfg(entry.name)
            assert cfg is not None and cfg.hf_hub_id, entry.name
            assert cfg.license.lower() == entry.license.lower(), entry.name


# ----------------------------------------------------------------------
# Hugging Face hub and timm names, from huggingface_hub's cache, offline
# ----------------------------------------------------------------------


def offline_env(hf_home):
    env = dict(
        os.environ,
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.pop("FASTAST_CACHE", None)
    return env


def test_hf_id_resolves_from_the_hub_cache(tmp_path, hf_ast, hub_cache_repo):
    from huggingface_hub import scan_cache_dir

    hf = hf_ast.model()
    hf.config.id2label = {i: f"sound {i}" for i in range(5)}
    hf.config.label2id = {v: k for k, v in hf.config.id2label.items()}
    hf_ast.save(hf, tmp_path / "saved")
    hub = tmp_path / "hf" / "hub"
    hub_cache_repo(
        hub, HF_ID, {n: tmp_path / "saved" / n for n in ("config.json", "model.safetensors")}
    )
    assert [r.repo_id for r in scan_cache_dir(hub).repos] == [HF_ID]  # the hub's own layout
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "fastast_plugin.cli", "export", HF_ID, str(out)],
        env=offline_env(tmp_path / "hf"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert read_labels(out / "label_encoder.txt") == [f"sound {i}" for i in range(5)]
    x = torch.randn(2, 128, 128)
    with torch.no_grad():
        expected = hf(x).logits
        assert (from_pretrained(out)(x) - expected).abs().max() <= 1e-4


def test_timm_tag_resolves_through_timm_from_the_hub_cache(tmp_path, deit_file, hub_cache_repo):
    _, sd = deit_file
    save_file(sd, str(tmp_path / "model.safetensors"))
    hub_cache_repo(
        tmp_path / "hf" / "hub",
        f"timm/{DEIT_TAG}",
        {"model.safetensors": tmp_path / "model.safetensors"},
    )
    code = (
        "import sys, torch; from fastast_plugin.models.ast import ASTEncoder; "
        f"e = ASTEncoder('tiny224', depth=1, input_tdim=128, init_from={DEIT_TAG!r}); "
        "torch.save({'norm': e.norm.weight, 'cls': e.cls_token}, sys.argv[1])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "loaded.pt")],
        env=offline_env(tmp_path / "hf"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = torch.load(tmp_path / "loaded.pt", weights_only=True)
    assert torch.equal(loaded["norm"], sd["norm.weight"])
    assert torch.equal(loaded["cls"], sd["cls_token"])
