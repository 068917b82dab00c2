"""Evaluation: metrics, benchmarks, patch-size sweeps and pictures of merging.

* ``metrics``: accuracy, mAP, AUC, d-prime, per-clip scores across DDP ranks.
* ``bench``, ``bench_features``, ``bench_pipeline``: speed, FLOPs and memory,
  side by side in one run (``python -m fastast_plugin.evaluation.bench``).
* ``sweep``: accuracy and speed across patch sizes.
* ``visualize``, ``plotting``: merged-token pictures, figures.

Imports ``weights``, ``models``, ``data`` and ``inference`` only.

Authors
 * fastast developers 2026
"""

# Nothing re-exported: the tools are used by module path (``python -m
# fastast_plugin.evaluation.bench``, ``from fastast_plugin.evaluation import metrics``).
__all__ = []
