"""DyMN (EfficientAT's dynamic MobileNet): the model, its front end, its released weights.

Authors
 * fastast developers 2026
"""

from fastast_plugin.models.dymn.frontend import DyMNFrontEnd
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.dymn.weights import load_dymn, load_dymn_file

__all__ = ["DyMN", "DyMNFrontEnd", "load_dymn", "load_dymn_file"]
