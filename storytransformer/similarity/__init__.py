"""Semantic duplicates, overlaps and merge candidates across a whole workspace.

Importing this package is cheap (it declares rules ST603-ST605); numpy and the
embedding model load when an index is first built.
"""

from __future__ import annotations

from . import semantic_rules as _rules  # noqa: F401  (declares ST603-ST605)

__all__ = ["SimilarityIndex", "semantic_findings", "Relation", "Thresholds"]


def __getattr__(name: str):
    if name == "SimilarityIndex":
        from .index import SimilarityIndex

        return SimilarityIndex
    if name == "semantic_findings":
        from .workspace_findings import semantic_findings

        return semantic_findings
    if name in ("Relation", "Thresholds"):
        from . import classify

        return getattr(classify, name)
    raise AttributeError(name)
