"""The model file: LightGBM's text format, checked against its recorded SHA-256 before it is read.

A model file is data, never code: LightGBM's text model lists each tree's splits and
leaf values, and parsing it cannot run anything (unlike a pickle). It is refused when

- its SHA-256 is not the one recorded when it was trained (a tampered or swapped file),
- it is not a LightGBM text model, or
- its features are not :data:`~services.risk.learning.features.FEATURE_NAMES` in order
  (a model of another feature layout would be asked about the wrong numbers).

:class:`LightGBMScorer` is the :class:`~services.risk.learning.features.ModelScorer`
scoring calls: one row, one call into LightGBM that returns each feature's contribution
(TreeSHAP, ``pred_contrib``); their sum is the log-odds, so the probability and the
features behind it come from the same pass.
"""

from __future__ import annotations

import hashlib
import math
import threading

import lightgbm as lgb
import numpy as np

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


class LightGBMScorer:
    """A loaded model; thread-safe (LightGBM's prediction is re-entrant; the lock guards nothing else)."""

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
        self._row = np.empty((1, len(FEATURE_NAMES)), dtype=np.float64)
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self._version

    def predict(self, features: FeatureInput) -> ModelVerdict:
        """Probability of fraud and the features that pushed it up most (contributions in log-odds)."""
        with self._lock:
            self._row[0, :] = vector(features)
            contrib = self._booster.predict(self._row, pred_contrib=True)[0]
        raw = float(contrib.sum())
        probability = 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0
        order = np.argsort(-contrib[:-1])[:TOP_FEATURES]
        top = tuple((FEATURE_NAMES[i], round(float(contrib[i]), 4)) for i in order if contrib[i] > 0)
        return ModelVerdict(probability=probability, top_features=top)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of many rows at once (evaluation and backtests)."""
        return np.asarray(self._booster.predict(matrix), dtype=np.float64)


def load_model(data: bytes, *, sha256: str, version: str) -> LightGBMScorer:
    """Check and load a model file (raises :class:`ModelFileRefused`)."""
    return LightGBMScorer(data, sha256=sha256, version=version)
