"""The models: AST encoder with token merging and flexible patches, its features, DyMN.

* ``ast``: ``ASTEncoder``, ``ASTHead``, ``ASTClassifier``.
* ``layers``: patch embedding, attention, the transformer block.
* ``lengths``: inputs of any length: frames, padding masks, runs per length.
* ``merge``: ToMe's bipartite soft matching, as pure functions.
* ``flexi``: FlexiAST's random patch size per training batch.
* ``features``: ``KaldiFbank``, AST's features, batched.
* ``pretrained``: ``from_pretrained``, a model from any supported checkpoint.
* ``dymn``: the DyMN teacher, its front end and its released weights.

Imports ``weights`` only.

Authors
 * fastast developers 2026
"""

from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.dymn import DyMN, DyMNFrontEnd
from fastast_plugin.models.features import KaldiFbank
from fastast_plugin.models.flexi import PatchSizeSampler
from fastast_plugin.models.pretrained import from_pretrained

__all__ = [
    "ASTClassifier",
    "ASTEncoder",
    "ASTHead",
    "DyMN",
    "DyMNFrontEnd",
    "KaldiFbank",
    "PatchSizeSampler",
    "from_pretrained",
]
