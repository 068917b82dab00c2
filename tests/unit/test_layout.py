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
    # The encoder benchmark (its timing loop is evaluation/timing.py): the
    # candidates (HF, r, keep ratio, back ends) and their tables, CPU and GPU.
    "evaluation/bench.py",
    # One checkpoint's architecture read from its tensors and fitted to an
    # encoder (pos-embed, PI-resize); the converters are weights/convert.py.
    "weights/fit.py",
    # The teacher sources behind build_teacher (online model, stored logits);
    # the store's files are training/logits_store.py.
    "training/teachers.py",
    # The patch-size sweep: evaluation, timing, its tables and its command.
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


# ----------------------------------------------------------------------
# Public names: ``__all__`` in every module lists exactly its public API
# ----------------------------------------------------------------------
def top_level_names(tree):
    """Names a module binds at its top level: (defined here, imported here).

    Statements inside top-level ``if`` / ``try`` / ``with`` blocks count; a
    module ``__getattr__`` (PEP 562) serves the string keys of its top-level
    dicts (``fastast_plugin._LAZY``).
    """
    defined, imported, statements = set(), set(), list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                defined |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for block in ("body", "orelse", "finalbody", "handlers"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                statements += getattr(node, block, [])
    if "__getattr__" in defined:
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                defined |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return defined, imported


def declared_all(tree):
    """The names in a module's ``__all__`` (None when it has none)."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return [ast.literal_eval(element) for element in node.value.elts]
    return None


def public_problems(path):
    """What is wrong with one module's ``__all__``, as readable lines."""
    tree = ast.parse(path.read_text(), str(path))
    names = declared_all(tree)
    where = path.relative_to(PACKAGE_DIR) if path.is_relative_to(PACKAGE_DIR) else path.name
    if names is None:
        return [f"{where}: no __all__"]
    defined, imported = top_level_names(tree)
    problems = [f"{where}: {name} is in __all__ but not bound" for name in names]
    problems = [p for p, name in zip(problems, names) if name not in defined | imported]
    unlisted = sorted(
        name
        for name in defined - set(names)
        if not name.startswith("_") and name not in ("logger", "__all__")
    )
    problems += [f"{where}: {name} is public (no _) but not in __all__" for name in unlisted]
    return problems


def names_used_from(path, known):
    """(module, name) pairs ``path`` takes from package modules by import or attribute."""
    tree = ast.parse(path.read_text(), str(path))
    used, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:  # a submodule
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif alias.name != "*":
                    used.add((node.module, alias.name))
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in known})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in aliases:
                used.add((aliases[node.value.id], node.attr))
    return used


def test_every_module_lists_exactly_its_public_names():
    problems = [line for path in modules().values() for line in public_problems(path)]
    assert not problems, "\n".join(problems)


def test_names_used_elsewhere_are_in_all():
    """What other modules, the recipes and the tools take from a module is its public API."""
    known = modules()
    users = list(known.values()) + sorted((REPO / "recipes").rglob("*.py"))
    users += sorted((REPO / "tools").rglob("*.py"))
    listed = {name: declared_all(ast.parse(path.read_text())) or [] for name, path in known.items()}
    missing = sorted(
        f"{user.relative_to(REPO)} uses {module}.{name}, not in its __all__"
        for user in users
        for module, name in names_used_from(user, known)
        if name not in listed[module] and known[module] != user
    )
    assert not missing, "\n".join(missing)


def test_the_public_name_checks_see_problems(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\n__all__ = ['f', 'gone', 'os']\n"
        "def f(): pass\ndef helper(): pass\ndef _private(): pass\nCONSTANT = 1\nlogger = None\n"
    )
    assert public_problems(source) == [
        "m.py: gone is in __all__ but not bound",
        "m.py: CONSTANT is public (no _) but not in __all__",
        "m.py: helper is public (no _) but not in __all__",
    ]
    source.write_text("def f(): pass\n")
    assert public_problems(source) == ["m.py: no __all__"]
    user = tmp_path / "u.py"
    user.write_text(
        "from fastast_plugin.models import merge\nfrom fastast_plugin.models.ast import ASTHead\n"
        "merge.parse_r(2, 3)\n"
    )
    known = {"fastast_plugin.models", "fastast_plugin.models.merge", "fastast_plugin.models.ast"}
    assert names_used_from(user, known) == {
        ("fastast_plugin.models.merge", "parse_r"),
        ("fastast_plugin.models.ast", "ASTHead"),
    }
