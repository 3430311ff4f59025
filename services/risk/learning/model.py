"""The model file: LightGBM's text format, checked against its recorded SHA-256 before it is read.

A model file is data, never code: LightGBM's text model lists each tree's splits and
leaf values, and parsing it cannot run anything (unlike a pickle). It is refused when

- its SHA-256 is not the one recorded when it was trained (a tampered or swapped file),
- it is not a LightGBM text model, or
- its features are not :data:`~services.risk.learning.features.FEATURE_NAMES` in order
  (a model of another feature layout would be asked about the wrong numbers).

:class:`LightGBMScorer` is the :class:`~services.risk.learning.features.ModelScorer`
scoring calls: one row, one call into LightGBM's single-row fast path for the leaves,
then the probability and each feature's contribution from tables built at load.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import threading
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm import basic as lgb_basic

from services.risk.learning.features import FEATURE_NAMES, FeatureInput, ModelVerdict, vector

MODEL_FORMAT = "lightgbm-text/1"
TOP_FEATURES = 5
_HEADER = b"tree\n"


class ModelFileRefused(ValueError):
    """The model bytes are not the recorded ones, or not a model of our features."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _features_of(text: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith("feature_names="):
            return line.removeprefix("feature_names=").split(" ")
        if line.startswith("Tree="):
            break
    raise ModelFileRefused("the model file names no features")


#: LightGBM's C library and its call helpers (the documented C API, reached as the package itself does).
_LIB: Any = getattr(lgb_basic, "_LIB")  # noqa: B009 - private to mypy, public C API
_c_str = lgb_basic._c_str
_safe_call = lgb_basic._safe_call
_PREDICT_LEAF_INDEX = 2  # LightGBM's C API: C_API_PREDICT_LEAF_INDEX
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


def _leaf_tables(booster: lgb.Booster) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per tree and leaf: the leaf's value and each feature's share of the path to it.

    The share (Saabas' path attribution, as in treeinterpreter) of a split is the change of
    the node value it causes; along a path they add up to ``leaf value - root value``, so
    ``bias + sum(contributions)`` is exactly the model's log-odds.
    """
    dump = booster.dump_model()
    n_features = len(dump["feature_names"])
    trees = dump["tree_info"]
    offsets = np.zeros(len(trees), dtype=np.int64)
    rows: list[np.ndarray] = []
    values: list[float] = []
    bias = 0.0
    for t, tree in enumerate(trees):
        offsets[t] = len(values)
        leaves = int(tree["num_leaves"])
        table = np.zeros((leaves, n_features))
        leaf_values = [0.0] * leaves
        root = tree["tree_structure"]
        if "leaf_value" in root:  # a single-leaf tree: a constant
            bias += float(root["leaf_value"])
            leaf_values[int(root.get("leaf_index", 0))] = float(root["leaf_value"])
        else:
            bias += float(root["internal_value"])
            stack: list[tuple[dict[str, object], np.ndarray]] = [(root, np.zeros(n_features))]
            while stack:
                node, path = stack.pop()
                value = float(node["internal_value"])  # type: ignore[arg-type]
                feature = int(node["split_feature"])  # type: ignore[call-overload]
                for side in ("left_child", "right_child"):
                    child: dict[str, object] = node[side]  # type: ignore[assignment]
                    child_value = float(child["leaf_value"] if "leaf_value" in child else child["internal_value"])  # type: ignore[arg-type]
                    share = path.copy()
                    share[feature] += child_value - value
                    if "leaf_value" in child:
                        leaf = int(child["leaf_index"])  # type: ignore[call-overload]
                        table[leaf] = share
                        leaf_values[leaf] = child_value
                    else:
                        stack.append((child, share))
        rows.append(table)
        values.extend(leaf_values)
    return offsets, np.vstack(rows), np.asarray(values), bias


class LightGBMScorer:
    """A loaded model, thread-safe (one prediction at a time through LightGBM's single-row fast path).

    One call of LightGBM's C API (``LGBM_BoosterPredictForMatSingleRowFast``, set up once)
    finds the leaf each tree sends the row to; the probability and the contributions then
    come from tables computed at load, in a few microseconds. (LightGBM's own
    ``pred_contrib`` TreeSHAP costs milliseconds per row, too slow for scoring.)
    """

    def __init__(self, data: bytes, *, sha256: str, version: str) -> None:
        actual = sha256_of(data)
        if actual != sha256:
            raise ModelFileRefused(f"model file hash {actual} is not the recorded {sha256}")
        if not data.startswith(_HEADER):
            raise ModelFileRefused("not a LightGBM text model")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFileRefused("not a LightGBM text model") from exc
        names = _features_of(text)
        if tuple(names) != FEATURE_NAMES:
            raise ModelFileRefused("the model's features are not this service's FEATURE_NAMES")
        try:
            self._booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise ModelFileRefused(f"LightGBM cannot read the model: {exc}") from exc
        self._version = version
        self.sha256 = sha256
        self._offsets, self._contributions, self._leaf_values, self.bias = _leaf_tables(self._booster)
        n = len(FEATURE_NAMES)
        self._row = np.zeros(n, dtype=np.float64)
        self._leaves = np.zeros(len(self._offsets), dtype=np.float64)
        self._out_len = ctypes.c_int64()
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._leaves_ptr = self._leaves.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._fast = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                self._booster._handle,
                ctypes.c_int(_PREDICT_LEAF_INDEX),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n),
                _c_str("num_threads=1"),
                ctypes.byref(self._fast),
            )
        )
        self._lock = threading.Lock()

    def __del__(self) -> None:
        fast = getattr(self, "_fast", None)
        if fast is not None and fast.value:
            _LIB.LGBM_FastConfigFree(fast)

    @property
    def version(self) -> str:
        return self._version

    def predict(self, features: FeatureInput) -> ModelVerdict:
        """Probability of fraud and the features that pushed it up most (contributions in log-odds)."""
        with self._lock:
            self._row[:] = vector(features)
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._fast, self._row_ptr, ctypes.byref(self._out_len), self._leaves_ptr
                )
            )
            rows = self._offsets + self._leaves.astype(np.int64)
        raw = float(self._leaf_values[rows].sum())  # = bias + contributions
        contrib = self._contributions[rows].sum(axis=0)
        probability = 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0
        order = np.argsort(-contrib)[:TOP_FEATURES]
        top = tuple((FEATURE_NAMES[i], round(float(contrib[i]), 4)) for i in order if contrib[i] > 0)
        return ModelVerdict(probability=probability, top_features=top)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of many rows at once (evaluation and backtests)."""
        return np.asarray(self._booster.predict(matrix), dtype=np.float64)


def load_model(data: bytes, *, sha256: str, version: str) -> LightGBMScorer:
    """Check and load a model file (raises :class:`ModelFileRefused`)."""
    return LightGBMScorer(data, sha256=sha256, version=version)
