"""Package layout: subpackages by role, imported only downwards, and the README's map of them.

Every module of ``fastast_plugin`` is parsed with the standard library's
``ast`` module (nothing is imported, so lazy imports inside functions count
too). The graph of intra-package imports must be acyclic, each subpackage
may import only the subpackages below it in ``LAYERS``, the README's
layout map must name exactly the modules that exist, and no module may
exceed ``MAX_LINES`` unless ``LONG_MODULES`` says why it is one idea.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = "fastast_plugin"
REPO = Path(__file__).parents[2]
PACKAGE_DIR = REPO / PACKAGE
# Lowest first: a module may import its own layer and those before it.
# cli_options (the options the commands share) sits just below its lowest users.
LAYERS = (
    "weights",
    "models",
    "data",
    "cli_options",
    "inference",
    "evaluation",
    "training",
    "cli",
)
# The facade: the public API and the old (flat) module paths.
FACADE = {PACKAGE, f"{PACKAGE}._moved"}


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """Dotted module name -> file, for every module of the package."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(path, known):
    """Package modules that ``path`` imports anywhere (top level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                raise AssertionError(f"{path}: relative import; the package imports absolutely")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    if path.is_relative_to(REPO):
        found.discard(module_name(path))
    return found


def import_graph():
    known = modules()
    return {name: imported_modules(path, known) for name, path in known.items()}


def layer(name):
    """Index in LAYERS of a module's subpackage (None for the facade)."""
    if name in FACADE:
        return None
    return LAYERS.index(name.split(".")[1])


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_function_level_imports_are_seen(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "def f():\n    from fastast_plugin.models.pretrained import from_pretrained\n"
        "from fastast_plugin.weights import resize\nimport fastast_plugin.models.merge\n"
    )
    known = {
        "fastast_plugin.models.pretrained",
        "fastast_plugin.weights.resize",
        "fastast_plugin.weights",
        "fastast_plugin.models.merge",
    }
    assert imported_modules(source, known) == known


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert len(graph) > 40, "modules not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_module_sits_in_a_layer():
    for name in modules():
        if name not in FACADE:
            assert name.split(".")[1].removesuffix(".py") in LAYERS, name


def test_subpackages_import_only_downwards():
    wrong = [
        f"{name} ({LAYERS[layer(name)]}) imports {dep} ({LAYERS[layer(dep)]})"
        for name, deps in import_graph().items()
        if name not in FACADE
        for dep in deps
        if dep not in FACADE and layer(dep) > layer(name)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    known = {"fastast_plugin.training.brain"}
    source = tmp_path / "x.py"
    source.write_text("from fastast_plugin.training.brain import AudioClassifierBrain\n")
    (dep,) = imported_modules(source, known)
    assert layer(dep) > layer("fastast_plugin.models.ast")


def readme_map():
    """Module files the README's layout block names, as paths under the package."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    named, folders = set(), []
    for line in block.splitlines():
        entry = re.match(r"^( *)(\S+)", line)
        if not entry:
            continue
        indent, word = len(entry.group(1)), entry.group(2)
        depth = indent // 2 - 1  # fastast_plugin/ at indent 0, its files at 2
        if line.startswith(PACKAGE) or depth < 0:
            folders = []
            continue
        folders = folders[:depth]
        if word.endswith("/"):
            folders.append(word.rstrip("/"))
            # "dymn/   model.py: ...; frontend.py: ..." names the folder's files inline
            for inline in re.findall(r"(\w+\.py)", line[len(entry.group(0)) :]):
                named.add("/".join(folders + [inline]))
        elif word.endswith(".py"):
            named.add("/".join(folders + [word]))
    return named


def test_the_readme_maps_every_module():
    on_disk = {
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE_DIR
    }
    named = readme_map()
    assert on_disk - named == set(), "modules missing from the README's layout"
    assert named - on_disk == set(), "the README's layout names modules that do not exist"


# A module longer than this holds several ideas unless it says why not below.
MAX_LINES = 600
# Longer modules, each one idea (or being split in a parallel branch); keep it short.
LONG_MODULES = {
    # The AST model: the encoder with its run-time settings (merging, patch
    # size, length mode), the head and the two together.
    "models/ast.py",
    # The DyMN network, block by block.
    "models/dymn/model.py",
    # KaldiFbank and the frame counts its framing implies.
    "models/features.py",
    # The one Brain and the settings it reads (its YAML interface).
    "training/brain.py",
    # The SpeechBrain interface: windows, batching, embeddings, results.
    "inference/classifier.py",
    # Named weights and fetching them; taking the downloads out would rename
    # the DownloadError users see.
    "weights/registry.py",
    # Split by issue 17 item 3 in parallel: timing to evaluation/timing.py,
    # the export-folder format to weights/folder.py, the logits store to
    # training/logits_store.py; the label reader out of sweep (item 6 moves
    # the sweep command in). Drop each entry once under the limit.
    "evaluation/bench.py",
    "weights/fit.py",
    "training/teachers.py",
    "evaluation/sweep.py",
}


def too_long(package_dir, limit=MAX_LINES, allowed=frozenset()):
    """Modules (paths under ``package_dir``) over ``limit`` lines and not ``allowed``."""
    return sorted(
        name
        for path in package_dir.rglob("*.py")
        if (name := path.relative_to(package_dir).as_posix()) not in allowed
        and len(path.read_text().splitlines()) > limit
    )


def test_no_module_over_the_line_limit():
    assert too_long(PACKAGE_DIR, allowed=LONG_MODULES) == [], (
        f"modules over {MAX_LINES} lines: split them by idea, or add them to "
        "LONG_MODULES with the reason they are one"
    )


def test_the_long_modules_listed_are_long():
    """The allow-list only names modules that exist and need it."""
    long = set(too_long(PACKAGE_DIR))
    assert LONG_MODULES - long == set(), "LONG_MODULES names modules within the limit"


def test_the_line_check_sees_a_long_module(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.py").write_text("x = 1\n" * 11)
    (tmp_path / "small.py").write_text("x = 1\n" * 10)
    assert too_long(tmp_path, limit=10) == ["sub/big.py"]
    assert too_long(tmp_path, limit=10, allowed={"sub/big.py"}) == []


@pytest.mark.parametrize(
    "path",
    [
        "fastast_plugin.ast.ASTEncoder",
        "fastast_plugin.ast.ASTHead",
        "fastast_plugin.ast.ASTClassifier",
        "fastast_plugin.features.KaldiFbank",
        "fastast_plugin.augment.SpecAugment",
        "fastast_plugin.augment.Mixup",
        "fastast_plugin.augment.NoiseRoll",
        "fastast_plugin.losses.SingleLabelKDLoss",
        "fastast_plugin.losses.MultiLabelKDLoss",
        "fastast_plugin.schedulers.WarmupStepDecay",
        "fastast_plugin.brain.BrainSettings",
        "fastast_plugin.brain.AudioClassifierBrain",
        "fastast_plugin.teachers.build_teacher",
        "fastast_plugin.flexi.PatchSizeSampler",
        "fastast_plugin.flexi.pi_resize",
        "fastast_plugin.dataio.fold_path",
        "fastast_plugin.inference.load_weights",
        "fastast_plugin.inference.AudioClassifier",
        "fastast_plugin.weights.load_encoder_weights",
        "fastast_plugin.checkpoints.from_pretrained",
    ],
)
def test_old_yaml_paths_resolve_to_the_same_objects(path):
    """The v2 paths of YAML files and exported folders, as hyperpyyaml finds them."""
    import importlib
    import pydoc

    from fastast_plugin._moved import MOVED

    found = pydoc.locate(path)
    assert found is not None, path
    module = importlib.import_module(found.__module__)
    assert getattr(module, path.rsplit(".", 1)[1]) is found
    old = path.split(".")[1]
    assert old in MOVED or old in ("weights", "inference")
