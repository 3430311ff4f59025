"""Training on a learnable synthetic stream, evaluation on a later window, and the model file's checks."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from services.risk.learning.evaluation import NotEvaluable, card_precision_top_k, evaluate, recall_at_fpr
from services.risk.learning.features import FEATURE_NAMES, ModelScorer
from services.risk.learning.model import ModelFileRefused, load_model, sha256_of
from services.risk.learning.replay import replay
from services.risk.learning.training import BadWindows, TrainingResult, Windows, train_and_evaluate
from tests.risk.learning.synthetic import START, stream

WINDOWS = Windows(
    train_from=START,
    train_to=START + timedelta(days=40),
    test_from=START + timedelta(days=40),
    test_to=START + timedelta(days=60),
)


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    return train_and_evaluate(stream(), WINDOWS, rounds=60)


def test_the_model_learns_fraud_far_above_the_base_rate(trained: TrainingResult) -> None:
    m = trained.metrics
    base_rate = m.frauds / m.transactions
    assert m.frauds > 10
    assert m.average_precision > max(0.4, 5 * base_rate)
    assert m.recall_at_1pct_fpr > 0.2
    assert trained.train_frauds > 0
    assert trained.train_rows > m.transactions


def test_evaluation_uses_only_the_later_window(trained: TrainingResult) -> None:
    events = stream()
    later = [e for e in events if WINDOWS.test_from <= e.occurred_at < WINDOWS.test_to]
    assert trained.metrics.transactions == len(later)
    assert trained.metrics.frauds == sum(e.label == "fraud" for e in later)


def test_windows_must_put_evaluation_after_training() -> None:
    with pytest.raises(BadWindows):
        Windows(START, START + timedelta(days=10), START + timedelta(days=5), START + timedelta(days=20))


def test_the_loaded_model_scores_one_transaction_with_its_top_features(trained: TrainingResult) -> None:
    scorer: ModelScorer = load_model(trained.model, sha256=trained.sha256, version="m1")
    assert scorer.version == "m1"
    events = stream()
    verdicts = [scorer.predict(f) for e, f in replay(events) if e.occurred_at >= WINDOWS.test_from]
    assert all(0.0 <= v.probability <= 1.0 for v in verdicts)
    riskiest = max(verdicts, key=lambda v: v.probability)
    assert riskiest.probability > 0.5
    assert riskiest.top_features
    names = [name for name, _ in riskiest.top_features]
    assert set(names) <= set(FEATURE_NAMES)
    contributions = [c for _, c in riskiest.top_features]
    assert contributions == sorted(contributions, reverse=True)
    assert all(c > 0 for c in contributions)


def test_single_and_batch_prediction_agree(trained: TrainingResult) -> None:
    from services.risk.learning.features import vector

    scorer = load_model(trained.model, sha256=trained.sha256, version="m1")
    rows = [(f, vector(f)) for _, f in list(replay(stream(days=20)))[-50:]]
    batch = scorer.predict_matrix(np.asarray([r for _, r in rows]))
    single = [scorer.predict(f).probability for f, _ in rows]
    assert np.allclose(batch, single, atol=1e-9)


def test_a_tampered_model_file_is_refused(trained: TrainingResult) -> None:
    tampered = trained.model.replace(b"leaf_value=", b"leaf_value=9", 1)
    with pytest.raises(ModelFileRefused, match="hash"):
        load_model(tampered, sha256=trained.sha256, version="m1")
    # Re-hashing the tampered file only passes the hash check when the attacker can also rewrite the registry.
    assert load_model(trained.model, sha256=sha256_of(trained.model), version="m1").version == "m1"


def test_files_that_are_not_our_models_are_refused(trained: TrainingResult) -> None:
    pickled = b"\x80\x04\x95" + b"cos\nsystem\n(S'echo owned'\ntR."
    with pytest.raises(ModelFileRefused, match="not a LightGBM"):
        load_model(pickled, sha256=sha256_of(pickled), version="x")
    other_layout = trained.model.replace(b"feature_names=amount ", b"feature_names=other ", 1)
    with pytest.raises(ModelFileRefused, match="FEATURE_NAMES"):
        load_model(other_layout, sha256=sha256_of(other_layout), version="x")


def test_the_model_file_is_text_data(trained: TrainingResult) -> None:
    text = trained.model.decode("utf-8")
    assert text.startswith("tree\n")
    assert f"feature_names={' '.join(FEATURE_NAMES)}" in text


def test_no_pickle_anywhere_in_learning() -> None:
    root = Path(__file__).resolve().parents[3] / "services" / "risk" / "learning"
    forbidden = {"pickle", "joblib", "dill", "cloudpickle", "marshal", "shelve"}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden, path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in forbidden, path


def test_handbook_measures_on_a_hand_made_example() -> None:
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.1, 0.0, 0.05, 0.15])
    assert recall_at_fpr(labels, scores, budget=0.0) == 0.5  # only the 0.9 fraud above every genuine
    assert recall_at_fpr(labels, scores, budget=1 / 8) == 1.0
    days = ["d1"] * 5 + ["d2"] * 5
    cards = ["a", "b", "c", "a", "d", "a", "b", "c", "d", "e"]
    # Day 1: top-2 cards a (0.9, fraud) and b (0.8); day 2: a is already detected and drops out.
    assert card_precision_top_k(days, cards, labels, scores, k=2) == pytest.approx((1 / 2 + 0) / 2)
    metrics = evaluate([START + timedelta(days=i // 5) for i in range(10)], cards, labels, scores)
    assert 0 < metrics.average_precision <= 1
    assert metrics.frauds == 2


def test_a_window_without_fraud_cannot_be_evaluated() -> None:
    with pytest.raises(NotEvaluable):
        evaluate([START], ["a"], [False], [0.5])


def test_contributions_add_up_to_the_models_log_odds(trained: TrainingResult) -> None:
    import math

    from services.risk.learning.features import vector

    scorer = load_model(trained.model, sha256=trained.sha256, version="m1")
    features = [f for _, f in replay(stream(days=30))][-200:]
    matrix = np.asarray([vector(f) for f in features])
    shap = scorer._booster.predict(matrix, pred_contrib=True)  # LightGBM's TreeSHAP, the slow reference
    for row, f in zip(shap, features, strict=True):
        verdict = scorer.predict(f)
        assert verdict.probability == pytest.approx(1 / (1 + math.exp(-row.sum())), abs=1e-9)
        assert all(c > 0 for _, c in verdict.top_features)
