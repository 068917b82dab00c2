"""fastast: fast and flexible Audio Spectrogram Transformers for SpeechBrain.

Token-merged (ToMe) and flexible-patch AST encoders, AST-exact features and
checkpoint loading, as ordinary PyTorch modules usable from hyperpyyaml.

Authors
 * fastast developers 2026
"""

from fastast_plugin.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.checkpoints import from_pretrained
from fastast_plugin.features import KaldiFbank

__all__ = ["ASTClassifier", "ASTEncoder", "ASTHead", "KaldiFbank", "from_pretrained"]
