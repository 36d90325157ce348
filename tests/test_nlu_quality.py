"""The NLU on the held-out split must not fall below the floors set from the
measured figures (docs/eval/results.json; `make eval` prints them all).

Measured on 2026-11-29 (model 223c9226, 1,625 training examples, 369 held-out
sentences): intent accuracy 0.965, macro F1 0.962, pollution_type accuracy
0.967, approval_type accuracy 0.980 (the model before it, 7 examples fewer:
0.973 / 0.965 / 0.967 / 0.980). Floors sit a little below, so a retrain's
noise passes and a real regression fails.
"""
from __future__ import annotations

import pytest

from scripts import eval_nlu, model

FLOORS = {"intent_accuracy": 0.95, "intent_macro_f1": 0.94, "pollution_type_accuracy": 0.93,
          "approval_type_accuracy": 0.94}


@pytest.fixture(scope="module")
def figures():
    return eval_nlu.evaluate(model.ensure_model(log=lambda m: None))


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_figure_is_above_its_floor(figures, name):
    assert figures["n_sentences"] >= 300
    assert figures[name] >= FLOORS[name], {k: figures[k] for k in FLOORS} | {"errors": figures["errors"]}
