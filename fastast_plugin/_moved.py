"""Old module paths of the flat package (v2), kept working after the move into subpackages.

Recipes, ``hparams/`` snippets and folders written by ``fastast export`` before
the v3 layout name classes by their old paths in YAML (``!new:fastast_plugin.
ast.ASTEncoder``, ``fastast_plugin.features.KaldiFbank``, ...), and the README
of earlier releases runs ``python -m fastast_plugin.bench``. A finder on
``sys.meta_path`` answers each old name with the module that now holds its
code, the same module object (so classes keep their identity), and lets
``python -m`` run it.

Authors
 * fastast developers 2026
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["MOVED", "install"]

# old module (under fastast_plugin) -> where its code lives now; a tuple when
# its code was split (the first module is the one ``python -m`` runs).
MOVED = {
    "registry": "weights.registry",
    "state_dict": "weights.state_dict",
    "convert": "weights.convert",
    "flexi": ("weights.resize", "models.flexi"),
    "ast": "models.ast",
    "layers": "models.layers",
    "merge": "models.merge",
    "features": "models.features",
    "checkpoints": "models.pretrained",
    "dymn": "models.dymn.model",
    "dymn_frontend": "models.dymn.frontend",
    "dymn_weights": "models.dymn.weights",
    "audio": "data.audio",
    "dataio": "data.dataio",
    "crops": "data.crops",
    "augment": "data.augment",
    "sampling": "data.sampling",
    "audioset": "data.audioset",
    "shards": "data.shards",
    "synthetic": "data.synthetic",
    "stats": "data.stats",
    "classify": "inference.classify",
    "export": "inference.export",
    "onnx_export": "inference.onnx",
    "quantize": "inference.quantize",
    "metrics": "evaluation.metrics",
    "bench": "evaluation.bench",
    "bench_features": "evaluation.bench_features",
    "bench_pipeline": "evaluation.bench_pipeline",
    "sweep": "evaluation.sweep",
    "visualize": "evaluation.visualize",
    "plotting": "evaluation.plotting",
    "brain": "training.brain",
    "recipe": "training.recipe",
    "losses": "training.losses",
    "schedulers": "training.schedulers",
    "averaging": "training.averaging",
    "crossval": "training.crossval",
    "teachers": "training.teachers",
    "precompute": "training.precompute",
    "efficientat": "training.efficientat",
}
# ``fastast_plugin.weights`` and ``fastast_plugin.inference`` were modules and
# are now subpackages whose ``__init__`` re-exports the old names.


def _targets(old):
    new = MOVED[old]
    return [f"{__package__}.{name}" for name in ((new,) if isinstance(new, str) else new)]


class _MovedLoader(importlib.machinery.SourceFileLoader):
    """Loads an old name as its new module; ``get_code`` serves ``python -m``."""

    def __init__(self, fullname, path, targets):
        super().__init__(fullname, path)
        self.targets = targets

    def create_module(self, spec):
        modules = [importlib.import_module(name) for name in self.targets]
        if len(modules) == 1:
            return modules[0]
        joined = types.ModuleType(spec.name, modules[0].__doc__)
        for module in modules:
            names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
            joined.__dict__.update({name: getattr(module, name) for name in names})
        return joined

    def exec_module(self, module):
        """The module ran when its new path was imported."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != __package__ or old not in MOVED:
            return None
        targets = _targets(old)
        origin = importlib.util.find_spec(targets[0]).origin
        loader = _MovedLoader(fullname, origin, targets)
        return importlib.util.spec_from_file_location(fullname, origin, loader=loader)


def install():
    """Put the finder on ``sys.meta_path`` once (``fastast_plugin`` does on import)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
