"""A fitted tree ensemble as flat numpy arrays: fast scoring, and a plain-data file format (no pickle).

Every tree is stored in one set of node arrays. A leaf points to itself, so walking every tree a fixed number
of levels (the deepest tree's depth) lands each tree on its leaf: one batch is scored with `depth` vectorised
steps over all trees at once, with no Python loop over trees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from prism_core.errors import UsageError

Floats = npt.NDArray[np.float64]
CHUNK_ROWS = 4096  # rows scored at once by `predict`: bounds the (rows x trees) index matrix


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """Sum of regression trees. `children[2 * node + go_left]` is the next node; leaves hold `value`."""

    feature: npt.NDArray[np.intp]
    threshold: Floats
    children: npt.NDArray[np.intp]
    value: Floats
    roots: npt.NDArray[np.intp]
    depth: int
    n_features: int

    @classmethod
    def from_lightgbm(cls, dump: dict[str, Any]) -> TreeEnsemble:
        """Flatten LightGBM's `Booster.dump_model()` (numerical splits, `<=` decisions only)."""
        feature: list[int] = []
        threshold: list[float] = []
        children: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        depth = 0

        def add(node: dict[str, Any], level: int) -> int:
            nonlocal depth
            me = len(feature)
            feature.append(0)
            threshold.append(0.0)
            children.extend((me, me))
            value.append(0.0)
            if "leaf_value" in node or "split_feature" not in node:
                value[me] = float(node.get("leaf_value", 0.0))
                depth = max(depth, level)
                return me
            if node.get("decision_type") != "<=":
                raise ValueError(f"unsupported split {node.get('decision_type')!r}: only numerical '<=' splits")
            feature[me] = int(node["split_feature"])
            threshold[me] = float(node["threshold"])
            left = add(node["left_child"], level + 1)
            right = add(node["right_child"], level + 1)
            children[2 * me], children[2 * me + 1] = right, left
            return me

        for tree in dump["tree_info"]:
            roots.append(add(tree["tree_structure"], 0))
        return cls(
            feature=np.array(feature, dtype=np.intp),
            threshold=np.array(threshold, dtype=np.float64),
            children=np.array(children, dtype=np.intp),
            value=np.array(value, dtype=np.float64),
            roots=np.array(roots, dtype=np.intp),
            depth=depth,
            n_features=len(dump["feature_names"]),
        )

    def predict_one(self, x: Floats) -> float:
        """The ensemble's output for one feature vector: the online scoring path."""
        idx = self.roots
        feature, threshold, children = self.feature, self.threshold, self.children
        for _ in range(self.depth):
            idx = children[2 * idx + (x[feature[idx]] <= threshold[idx])]
        return float(self.value[idx].sum())

    def predict(self, x: Floats) -> Floats:
        """Outputs for a (rows x features) matrix."""
        out = np.empty(len(x), dtype=np.float64)
        for lo in range(0, len(x), CHUNK_ROWS):
            xs = x[lo : lo + CHUNK_ROWS]
            rows = np.arange(len(xs))[:, None]
            idx = np.broadcast_to(self.roots, (len(xs), len(self.roots)))
            for _ in range(self.depth):
                idx = self.children[2 * idx + (xs[rows, self.feature[idx]] <= self.threshold[idx])]
            out[lo : lo + len(xs)] = self.value[idx].sum(axis=1)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature.tolist(),
            "threshold": self.threshold.tolist(),
            "children": self.children.tolist(),
            "value": self.value.tolist(),
            "roots": self.roots.tolist(),
            "depth": self.depth,
            "n_features": self.n_features,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> TreeEnsemble:
        """Rebuild from `to_dict`, checking every index stays inside the arrays (a corrupt file is a UsageError)."""
        try:
            t = cls(
                feature=np.asarray(d["feature"], dtype=np.intp),
                threshold=np.asarray(d["threshold"], dtype=np.float64),
                children=np.asarray(d["children"], dtype=np.intp),
                value=np.asarray(d["value"], dtype=np.float64),
                roots=np.asarray(d["roots"], dtype=np.intp),
                depth=int(d["depth"]),
                n_features=int(d["n_features"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: the tree arrays are malformed ({type(exc).__name__}: {exc})") from None
        n = len(t.value)
        ok = (
            len(t.feature) == n == len(t.threshold)
            and len(t.children) == 2 * n
            and len(t.roots) > 0
            and t.depth >= 0
            and bool(np.all((t.children >= 0) & (t.children < n)))
            and bool(np.all((t.roots >= 0) & (t.roots < n)))
            and bool(np.all((t.feature >= 0) & (t.feature < t.n_features)))
            and bool(np.all(np.isfinite(t.value)))
        )
        if not ok:
            raise UsageError(f"{where}: the tree arrays are inconsistent (a corrupt or hand-edited model file)")
        return t
