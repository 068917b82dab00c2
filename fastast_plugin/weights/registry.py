"""Named published weights: the registry, the download cache and name resolution.

Every checkpoint source of the package (``from_pretrained``,
``ASTEncoder(init_from=...)``, ``teacher_checkpoint``, ``fastast export``)
also takes a registry name: ``resolve`` turns a name into a local file or
folder, downloading it once into the cache. Each ``PretrainedWeights`` entry
names where the weights come from, their sha256 when known, the architecture
and feature statistics they were trained with, their labels and license (as
timm's named pretrained configs do).

Four kinds of source:

* ``"url"``: a direct download (AST's Dropbox links, EfficientAT's GitHub
  release), cached under ``FASTAST_CACHE`` or else torch.hub's
  ``checkpoints`` folder (``$TORCH_HOME/hub/checkpoints``, where
  ``torch.hub.load_state_dict_from_url`` keeps them too). The download shows a
  progress bar on a terminal, goes to ``<file>.part``, resumes an interrupted
  transfer with an HTTP ``Range`` request (or restarts it when the server
  ignores ranges), checks the sha256 and is renamed when complete.
* ``"hf"``: a Hugging Face hub repository, fetched with ``huggingface_hub``
  (its cache: ``HF_HOME``, ``HF_HUB_OFFLINE``; ``FASTAST_CACHE/huggingface``
  when ``FASTAST_CACHE`` is set).
* ``"timm"``: a timm pretrained tag; timm's pretrained config names the hub
  repository, fetched as above.
* ``"manual"``: published without a direct link (FlexiAST's models): the
  file must be put into the cache by hand; the error says where.

Original AST files keep their published names in the cache
(``audioset_10_10_0.4593.pth``): ``fastast_plugin.weights.fit`` reads the strides
from them.

Authors
 * fastast developers 2026
"""

import argparse
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from filelock import FileLock
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

__all__ = [
    "DYMN_RELEASE",
    "REGISTRY",
    "ChecksumError",
    "DownloadError",
    "PretrainedWeights",
    "cache_dir",
    "download",
    "find",
    "labels_file",
    "main",
    "resolve",
]

logger = get_logger(__name__)

_CACHE_ENV = "FASTAST_CACHE"
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # preferred first
_CHUNK = 1 << 20
_ATTEMPTS = 3  # tries per download (a broken transfer resumes or restarts)
_TIMEOUT_S = 60
_RANGE_NOT_SATISFIABLE = 416
# Packaged label files (package data), by the ``labels`` key of an entry.
_LABEL_FILES = {"audioset": "labels/class_labels_indices.csv"}

# AST's feature statistics (YuanGongND/ast, egs/*/run.sh dataset_mean/std).
_AUDIOSET_STATS = {"mean": -4.2677393, "std": 4.5689974}
_SPEECHCOMMANDS_STATS = {"mean": -6.845978, "std": 5.5654526}
_VOXCELEB_STATS = {"mean": -3.7614744, "std": 4.2011642}  # FlexiAST egs/voxceleb


class DownloadError(OSError):
    """A download failed (no network, HTTP error); the message names the URL and the file.

    Example
    -------
    >>> issubclass(DownloadError, OSError)
    True
    """


class ChecksumError(DownloadError):
    """A downloaded file's sha256 is not the registry's.

    Example
    -------
    >>> issubclass(ChecksumError, DownloadError)
    True
    """


@dataclass(frozen=True)
class PretrainedWeights:
    """One published checkpoint: where it is, what it is.

    Arguments
    ---------
    name : str
        The registry name (what users type).
    kind : str
        ``"url"``, ``"hf"``, ``"timm"`` or ``"manual"`` (see the module).
    location : str
        The URL, the hub repository id, the timm tag, or (manual) the page
        that publishes the file.
    filename : str, optional
        The cached file's name (``"url"`` and ``"manual"``).
    sha256 : str, optional
        Hex digest of the file, or None where it is not published.
    model : str
        ``"ast"`` (any ``from_pretrained`` source) or ``"dymn"``.
    architecture : dict
        What the weights were trained with: ``model_size``, ``fstride``,
        ``tstride``, ``input_tdim``, ``n_classes``, ``mean``, ``std`` for AST;
        ``width_mult``, ``n_classes`` for DyMN.
    labels : str, optional
        Key of a packaged label file (``"audioset"``), or None.
    license : str
        The weights' license.
    description : str
        One line for ``fastast weights``.

    Example
    -------
    >>> entry = find("ast-audioset")
    >>> entry.filename, entry.architecture["input_tdim"], entry.labels
    ('audioset_10_10_0.4593.pth', 1024, 'audioset')
    """

    name: str
    kind: str
    location: str
    filename: str | None = None
    sha256: str | None = None
    model: str = "ast"
    architecture: dict = field(default_factory=dict)
    labels: str | None = None
    license: str = ""
    description: str = ""


# ----------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------
_AST_LICENSE = "BSD-3-Clause"  # YuanGongND/ast
_AST_DROPBOX = "https://www.dropbox.com/s/{key}/{file}?dl=1"  # AST README links


def _ast_architecture(strides, data):
    """A released AST's build: base384 at ``strides``, fine-tuned on AudioSet or Speech Commands."""
    audioset = data == "audioset"
    return {
        "model_size": "base384",
        "fstride": strides,
        "tstride": strides,
        "input_tdim": 1024 if audioset else 128,
        "n_classes": 527 if audioset else 35,
        **(_AUDIOSET_STATS if audioset else _SPEECHCOMMANDS_STATS),
    }


def _ast(name, key, file, strides, score, description, data="audioset"):
    """An original AST checkpoint on Dropbox (AST README, "Pretrained Models")."""
    return PretrainedWeights(
        name,
        "url",
        _AST_DROPBOX.format(key=key, file=file),
        file,
        None,
        "ast",
        _ast_architecture(strides, data),
        "audioset" if data == "audioset" else None,
        _AST_LICENSE,
        f"{description} ({score})",
    )


def _hf(repo, strides, description, data="audioset"):
    """A Hugging Face conversion of an AST checkpoint (MIT/ast-finetuned-*)."""
    # Labels come with the repository (config.json id2label).
    return PretrainedWeights(
        repo,
        "hf",
        repo,
        None,
        None,
        "ast",
        _ast_architecture(strides, data),
        None,
        _AST_LICENSE,
        description,
    )


def _timm(tag, model_size, description, license="Apache-2.0"):
    """ImageNet DeiT/ViT weights by timm's tag (AST's initialisation)."""
    arch = {"model_size": model_size, "n_classes": 1000, "mean": None, "std": None}
    return PretrainedWeights(tag, "timm", tag, None, None, "ast", arch, None, license, description)


DYMN_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
_DYMN_LICENSE = "MIT"  # fschmid56/EfficientAT


def _dymn(name, file, description):
    """EfficientAT's DyMN weights (GitHub release v0.0.1)."""
    width = {"dymn04": 0.4, "dymn10": 1.0, "dymn20": 2.0}[file[:6]]
    imagenet = "_im" in file
    arch = {
        "width_mult": width,
        "n_classes": 1000 if imagenet else 527,
        "temperature": 30.0 if imagenet else 1.0,  # final kernel-attention temperature
    }
    return PretrainedWeights(
        name,
        "url",
        DYMN_RELEASE + file,
        file,
        None,
        "dymn",
        arch,
        None if imagenet else "audioset",
        _DYMN_LICENSE,
        description,
    )


_FLEXIAST_PAGE = "https://github.com/JiuFengSC/FlexiAST_INTERSPEECH23"


def _flexiast(name, file, data, description):
    """A FlexiAST model: no direct download link is published."""
    audioset = data == "audioset"
    arch = {
        "model_size": "base224",
        "fstride": 16,
        "tstride": 16,
        "input_tdim": 1024,
        "n_classes": 527 if audioset else 1251,
        "flexible": "both",
        **(_AUDIOSET_STATS if audioset else _VOXCELEB_STATS),
    }
    return PretrainedWeights(
        name,
        "manual",
        _FLEXIAST_PAGE,
        file,
        None,
        "ast",
        arch,
        "audioset" if audioset else None,
        "BSD-3-Clause",
        description,
    )


_ENTRIES = [
    _ast(
        "ast-audioset-10-10-0.4593",
        "ca0b1v2nlxzyeb4",
        "audioset_10_10_0.4593.pth",
        10,
        "0.459 mAP",
        "AST, full AudioSet, weight averaging",
    ),
    _ast(
        "ast-audioset-10-10-0.4495",
        "1tv0hovue1bxupk",
        "audioset_10_10_0.4495.pth",
        10,
        "0.450 mAP",
        "AST, full AudioSet, model 1 of the 0.475/0.485 ensembles",
    ),
    _ast(
        "ast-audioset-10-10-0.4483",
        "6u5sikl4b9wo4u5",
        "audioset_10_10_0.4483.pth",
        10,
        "0.448 mAP",
        "AST, full AudioSet, model 2 of the ensembles",
    ),
    _ast(
        "ast-audioset-10-10-0.4475",
        "kt6i0v9fvfm1mbq",
        "audioset_10_10_0.4475.pth",
        10,
        "0.448 mAP",
        "AST, full AudioSet, model 3 of the ensembles",
    ),
    _ast(
        "ast-audioset-12-12-0.4467",
        "snfhx3tizr4nuc8",
        "audioset_12_12_0.4467.pth",
        12,
        "0.447 mAP",
        "AST, full AudioSet, strides 12 (0.485 ensemble)",
    ),
    _ast(
        "ast-audioset-14-14-0.4431",
        "z18s6pemtnxm4k7",
        "audioset_14_14_0.4431.pth",
        14,
        "0.443 mAP",
        "AST, full AudioSet, strides 14 (0.485 ensemble)",
    ),
    _ast(
        "ast-audioset-16-16-0.4422",
        "mdsa4t1xmcimia6",
        "audioset_16_16_0.4422.pth",
        16,
        "0.442 mAP",
        "AST, full AudioSet, strides 16 (0.485 ensemble)",
    ),
    _ast(
        "ast-speechcommands-10-10-0.9812",
        "q0tbqpwv44pquwy",
        "speechcommands_10_10_0.9812.pth",
        10,
        "98.12% accuracy",
        "AST, Speech Commands V2-35",
        data="speechcommands",
    ),
    _hf("MIT/ast-finetuned-audioset-10-10-0.4593", 10, "AST 0.4593 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-10-10-0.450", 10, "AST 0.4495 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-10-10-0.448", 10, "AST 0.4483 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-10-10-0.448-v2", 10, "AST 0.4475 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-12-12-0.447", 12, "AST 0.4467 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-14-14-0.443", 14, "AST 0.4431 (Hugging Face)"),
    _hf("MIT/ast-finetuned-audioset-16-16-0.442", 16, "AST 0.4422 (Hugging Face)"),
    _hf(
        "MIT/ast-finetuned-speech-commands-v2",
        10,
        "AST 0.9812 (Hugging Face)",
        data="speechcommands",
    ),
    _timm(
        "deit_base_distilled_patch16_384.fb_in1k",
        "base384",
        "ImageNet DeiT-B/16 distilled, 384 px (AST's initialisation)",
    ),
    _timm("deit_base_distilled_patch16_224.fb_in1k", "base224", "ImageNet DeiT-B/16 distilled"),
    _timm("deit_small_distilled_patch16_224.fb_in1k", "small224", "ImageNet DeiT-S/16 distilled"),
    _timm("deit_tiny_distilled_patch16_224.fb_in1k", "tiny224", "ImageNet DeiT-Ti/16 distilled"),
    _timm(
        "vit_base_patch16_224.augreg2_in21k_ft_in1k",
        "base224",
        "ImageNet-21k ViT-B/16 (one prefix token)",
    ),
    _flexiast(
        "flexiast-audioset",
        "flexiast_audioset.pth",
        "audioset",
        "FlexiAST, AudioSet (from the authors; no direct link)",
    ),
    _flexiast(
        "flexiast-voxceleb",
        "flexiast_voxceleb.pth",
        "voxceleb",
        "FlexiAST, VoxCeleb1 speaker identification (from the authors; no direct link)",
    ),
    _dymn("dymn04_im", "dymn04_im.pt", "DyMN width 0.4, ImageNet"),
    _dymn("dymn10_im", "dymn10_im.pt", "DyMN width 1.0, ImageNet"),
    _dymn("dymn20_im", "dymn20_im.pt", "DyMN width 2.0, ImageNet"),
    _dymn("dymn04_as", "dymn04_as.pt", "DyMN width 0.4, AudioSet"),
    _dymn("dymn10_as", "dymn10_as.pt", "DyMN width 1.0, AudioSet"),
    _dymn("dymn20_as", "dymn20_as_mAP_493.pt", "DyMN width 2.0, AudioSet (0.493 mAP)"),
    _dymn("dymn20_as(1)", "dymn20_as.pt", "DyMN width 2.0, AudioSet (first release)"),
    _dymn("dymn20_as(2)", "dymn20_as_mAP_489.pt", "DyMN width 2.0, AudioSet (0.489 mAP)"),
    _dymn("dymn20_as(3)", "dymn20_as_mAP_490.pt", "DyMN width 2.0, AudioSet (0.490 mAP)"),
]

#: Registry name -> entry.
REGISTRY = {entry.name: entry for entry in _ENTRIES}

#: Short names -> registry names.
_ALIASES = {
    "ast-audioset": "ast-audioset-10-10-0.4593",
    "ast-speechcommands": "ast-speechcommands-10-10-0.9812",
}


def find(name):
    """The registry entry of a name or alias, else None.

    Arguments
    ---------
    name : str or os.PathLike
        A registry name, an alias, or anything else (a path).

    Returns
    -------
    PretrainedWeights or None

    Example
    -------
    >>> find("ast-speechcommands").filename
    'speechcommands_10_10_0.9812.pth'
    >>> find("model.pt") is None
    True
    """
    name = os.fspath(name)
    return REGISTRY.get(_ALIASES.get(name, name))


def labels_file(entry):
    """The packaged label file of an entry, or None.

    Arguments
    ---------
    entry : PretrainedWeights

    Returns
    -------
    pathlib.Path or None

    Example
    -------
    >>> labels_file(find("ast-audioset")).name
    'class_labels_indices.csv'
    """
    if entry is None or entry.labels is None:
        return None
    return Path(str(resources.files(__package__).joinpath(_LABEL_FILES[entry.labels])))


# ----------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------
def cache_dir():
    """Folder of downloaded files: ``$FASTAST_CACHE``, else torch.hub's ``checkpoints``.

    Returns
    -------
    pathlib.Path

    Example
    -------
    >>> os.environ["FASTAST_CACHE"] = str(getfixture("tmp_path"))
    >>> cache_dir() == getfixture("tmp_path")
    True
    >>> del os.environ["FASTAST_CACHE"]
    """
    override = os.environ.get(_CACHE_ENV)
    if override:
        return Path(override)
    return Path(torch.hub.get_dir()) / "checkpoints"


def _hub_cache():
    """huggingface_hub's ``cache_dir``: its own default unless FASTAST_CACHE is set."""
    override = os.environ.get(_CACHE_ENV)
    return str(Path(override) / "huggingface") if override else None


def _is_cached(entry):
    """Whether an entry's files are in the cache (nothing is downloaded).

    Arguments
    ---------
    entry : PretrainedWeights

    Returns
    -------
    bool

    Example
    -------
    >>> os.environ["FASTAST_CACHE"] = str(getfixture("tmp_path"))
    >>> _is_cached(find("dymn04_as"))
    False
    >>> del os.environ["FASTAST_CACHE"]
    """
    if entry.kind in ("url", "manual"):
        return (cache_dir() / entry.filename).is_file()
    from huggingface_hub import try_to_load_from_cache

    repo = _hub_repo(entry)
    cached = [
        try_to_load_from_cache(repo, name, cache_dir=_hub_cache()) for name in _HF_WEIGHT_FILES
    ]
    return any(isinstance(path, str) for path in cached)


# ----------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------
def resolve(source, progress=None):
    """A local path for a checkpoint source: the path itself, or a registry name fetched.

    An existing file or folder always wins over a registry name.

    Arguments
    ---------
    source : str or os.PathLike
        A path, a registry name or an alias.
    progress : bool, optional
        Progress bar of a download; default: when stderr is a terminal.

    Returns
    -------
    str
        ``source`` unchanged when it is not a registry name (the caller
        reports a missing path), else the cached file (URL, manual, timm)
        or folder (Hugging Face, holding ``config.json``).

    Raises
    ------
    DownloadError
        Naming the URL or repository and where to put the file by hand.

    Example
    -------
    >>> resolve("some/model.pt")
    'some/model.pt'
    """
    source = os.fspath(source)
    entry = find(source)
    if entry is None or os.path.exists(source):
        return source
    if entry.kind == "hf":
        return str(_hub_folder(entry))
    if entry.kind == "timm":
        return str(_hub_weights(entry))
    path = cache_dir() / entry.filename
    if path.is_file():
        return str(path)
    if entry.kind == "manual":
        raise FileNotFoundError(
            f"{entry.name}: {entry.location} publishes no direct download link, so it "
            f"cannot be fetched; obtain {entry.filename} from the authors and put it at "
            f"{path} (or pass the file's path instead of the name)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # DDP ranks (and parallel jobs) build their models at once: one downloads,
    # the others wait for the lock and then find the file.
    with FileLock(f"{path}.lock"):
        if not path.is_file():
            download(entry.location, path, entry.sha256, progress)
    return str(path)


def _hub_repo(entry):
    """The hub repository of an ``hf`` entry, or timm's for a ``timm`` tag."""
    if entry.kind == "hf":
        return entry.location
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(entry.location)
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"timm has no hub repository for {entry.location!r}")
    return cfg.hf_hub_id.split("@")[0]


def _hub_file(repo, filename):
    """One file of a hub repository through huggingface_hub (its cache, its offline mode)."""
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, filename, cache_dir=_hub_cache())


def _hub_weights(entry):
    """The weights file of a hub repository: safetensors, else ``pytorch_model.bin``."""
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    repo = _hub_repo(entry)
    errors = []
    for filename in _HF_WEIGHT_FILES:
        try:
            return Path(_hub_file(repo, filename))
        except (EntryNotFoundError, LocalEntryNotFoundError, OSError) as err:
            errors.append(f"{filename}: {str(err).splitlines()[0]}")
    where = _hub_cache() or "the huggingface_hub cache (HF_HOME)"
    raise DownloadError(
        f"{entry.name}: could not fetch https://huggingface.co/{repo} "
        f"({'; '.join(errors)}). Without network, download it elsewhere "
        f"(`huggingface-cli download {repo}`) and copy the cache to {where}, "
        "or pass the downloaded folder's path instead of the name"
    )


def _hub_folder(entry):
    """A Hugging Face AST repository as a folder: config.json next to the weights."""
    weights = _hub_weights(entry)
    _hub_file(entry.location, "config.json")
    return weights.parent


# ----------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------
def download(url, path, sha256=None, progress=None, attempts=_ATTEMPTS, timeout=_TIMEOUT_S):
    """Download ``url`` to ``path`` through ``<path>.part``: resumed, checked, renamed.

    An interrupted transfer is continued with an HTTP ``Range`` request (a
    server that ignores it sends the whole file, which restarts it), up to
    ``attempts`` tries.

    Arguments
    ---------
    url : str
        Where to download from.
    path : str or os.PathLike
        The final file.
    sha256 : str, optional
        Expected hex digest; None skips the check.
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal.
    attempts : int
        Tries before giving up.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ChecksumError
        The complete file has another sha256 (the ``.part`` file is deleted).
    DownloadError
        The server cannot be reached or answers with an error; the message
        names the URL and where to put the file by hand.
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    logger.info("Downloading %s to %s", url, path)
    for attempt in range(1, attempts + 1):
        try:
            if _fetch_part(url, part, progress, timeout):
                break
        except urllib.error.HTTPError as err:
            if err.code != _RANGE_NOT_SATISFIABLE or attempt == attempts:
                raise DownloadError(
                    f"could not download {url} (HTTP {err.code} {err.reason}); "
                    f"download it elsewhere and put it at {path}"
                ) from err
            part.unlink()  # a stale part the server cannot continue: start again
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            if attempt == attempts:
                raise DownloadError(
                    f"could not download {url} ({_reason(err)}); without network, "
                    f"download it elsewhere and put it at {path}"
                ) from err
        logger.info("Download of %s broke off; try %d of %d", url, attempt + 1, attempts)
    else:
        raise DownloadError(
            f"could not download {url}: the transfer broke off {attempts} times; "
            f"{part} holds the part received, put the complete file at {path}"
        )
    _check_sha256(part, sha256, url)
    os.replace(part, path)
    return path


def _reason(err):
    reason = getattr(err, "reason", None) or err
    return f"{type(reason).__name__}: {reason}"


def _fetch_part(url, part, progress, timeout):
    """One request appending to ``part``; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0  # the server sends the whole file: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                disable=not progress,
                desc=part.name[: -len(".part")],
                file=sys.stderr,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size == total


def _check_sha256(part, sha256, url):
    if sha256 is None:
        return
    digest = hashlib.sha256()
    with open(part, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256.lower():
        part.unlink()
        raise ChecksumError(
            f"{part} downloaded from {url} has sha256 {digest.hexdigest()}, expected "
            f"{sha256}; the file was deleted (a corrupted or changed download)"
        )


# ----------------------------------------------------------------------
# fastast weights
# ----------------------------------------------------------------------
def _architecture(entry):
    arch = entry.architecture
    if entry.model == "dymn":
        return f"DyMN x{arch['width_mult']}"
    parts = [arch["model_size"]]
    if "fstride" in arch:
        parts.append(f"{arch['fstride']}/{arch['tstride']} x {arch['input_tdim']}")
    return " ".join(parts)


def _table():
    rows = [("name", "architecture", "classes", "labels", "license", "cached")]
    for entry in REGISTRY.values():
        labels = entry.labels or ("hub config" if entry.kind == "hf" else "-")
        rows.append(
            (
                entry.name,
                _architecture(entry),
                str(entry.architecture.get("n_classes", "")),
                labels,
                entry.license,
                "yes" if _is_cached(entry) else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]
    aliases = ", ".join(f"{alias} = {name}" for alias, name in _ALIASES.items())
    return "\n".join(lines + [f"aliases: {aliases}"])


def main(argv=None, prog=None):
    """Run ``fastast weights``: list the registry, or ``--download NAME``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    prog : str, optional
        Program name for ``--help``.

    Returns
    -------
    str or None
        The downloaded path with ``--download``.

    Example
    -------
    >>> os.environ["FASTAST_CACHE"] = str(getfixture("tmp_path"))
    >>> main([])  # doctest: +ELLIPSIS
    name ... cached
    ast-audioset-10-10-0.4593 ... base384 10/10 x 1024 ... 527 ... audioset ... BSD-3-Clause ... no
    ...
    >>> del os.environ["FASTAST_CACHE"]
    """
    parser = argparse.ArgumentParser(
        prog=prog or "fastast weights",
        description="List the named published weights (any of these names works "
        "wherever a checkpoint path does), or download one into the cache "
        f"(${_CACHE_ENV}, else $TORCH_HOME/hub/checkpoints; Hugging Face and timm "
        "weights go to the huggingface_hub cache).",
    )
    parser.add_argument("--download", metavar="NAME", help="fetch NAME into the cache")
    args = parser.parse_args(argv)
    if args.download is None:
        print(_table())
        return None
    if find(args.download) is None:
        parser.error(
            f"--download: {args.download!r} is not a registry name; `fastast weights` lists them"
        )
    path = resolve(args.download, progress=None)
    print(path)
    return path
