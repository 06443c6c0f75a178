"""`apply_export_config`: a pure projection of a record through an export config.

Paths are compiled into a tree so each record is walked once; lists are transparent (a path
continues into every element). Paths that do not exist in a record are ignored, so one
config fits records of different ages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from coatcheck.middleware.export.config import PRIVACY_FIRST, ExportConfig

__all__ = ["apply_export_config"]

# A path tree: name -> subtree, where None means "this whole subtree".
_Tree = dict[str, "_Tree | None"]
_MISSING = object()


def apply_export_config(record: Mapping[str, Any], config: ExportConfig | None) -> dict[str, Any]:
    """Return a new dict holding only what `config` lets leave; `record` is not touched.

    `None` is the privacy-first default: the mandatory fields only.
    """
    cfg = config or PRIVACY_FIRST
    if cfg.type == "allow":
        projected = _project(record, _compile(cfg.allowed_paths()))
        return projected if isinstance(projected, dict) else {}
    pruned = copy.deepcopy(dict(record))
    _prune(pruned, _compile(cfg.fields))
    return pruned


def _compile(paths: Iterable[str]) -> _Tree:
    """Merge dotted paths into a tree; a shorter path swallows longer ones under it."""
    tree: _Tree = {}
    for path in paths:
        node = tree
        *parents, leaf = path.split(".")
        for name in parents:
            child = node.setdefault(name, {})
            if child is None:
                break
            node = child
        else:
            node[leaf] = None
    return tree


def _project(value: Any, tree: _Tree | None) -> Any:
    """Copy the parts of `value` named by `tree`; `_MISSING` when nothing applies."""
    if tree is None:
        return copy.deepcopy(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for name, sub in tree.items():
            if name in value:
                kept = _project(value[name], sub)
                if kept is not _MISSING:
                    out[name] = kept
        return out
    if isinstance(value, list):
        items = (_project(item, tree) for item in value)
        return [item for item in items if item is not _MISSING]
    return _MISSING


def _prune(value: Any, tree: _Tree) -> None:
    """Delete the parts of `value` (a private copy) named by `tree`, in place."""
    if isinstance(value, dict):
        for name, sub in tree.items():
            if name not in value:
                continue
            if sub is None:
                del value[name]
            else:
                _prune(value[name], sub)
    elif isinstance(value, list):
        for item in value:
            _prune(item, tree)
