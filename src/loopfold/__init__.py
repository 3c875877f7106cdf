"""loopfold: predict antibody CDR loop backbones and whole Fv models from sequence.

``from loopfold import LoopFold`` gives the Python API (:mod:`loopfold.api`);
importing the package itself loads nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.3.0"
__all__ = ["LoopFold", "Prediction", "Loop", "__version__"]

if TYPE_CHECKING:
    from loopfold.api import Loop, LoopFold, Prediction


def __getattr__(name: str) -> object:
    """Load the API on first use (``loopfold.LoopFold``), so ``import loopfold`` stays cheap."""
    if name in ("LoopFold", "Prediction", "Loop"):
        import importlib

        return getattr(importlib.import_module("loopfold.api"), name)  # the top layer, loaded on first use
    raise AttributeError(f"module 'loopfold' has no attribute {name!r}")
