"""scripts/cross_validate.py reads Rasa's cross-validation summary lines."""
from scripts.cross_validate import parse_log

LOG = """\
2026-11-29 07:40:01 INFO     rasa.model_testing  - CV evaluation (n=5)
2026-11-29 07:40:01 INFO     rasa.model_testing  - Intent evaluation results
2026-11-29 07:40:01 INFO     rasa.nlu.test  - train Accuracy: 0.998 (0.001)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - train F1-score: 0.997 (0.001)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - train Precision: 0.997 (0.002)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - test Accuracy: 0.956 (0.004)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - test F1-score: 0.950 (0.005)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - test Precision: 0.951 (0.006)
2026-11-29 07:40:01 INFO     rasa.model_testing  - Entity evaluation results
2026-11-29 07:40:01 INFO     rasa.nlu.test  - Entity extractor: DIETClassifier
2026-11-29 07:40:01 INFO     rasa.nlu.test  - train Accuracy: 0.990 (0.001)
2026-11-29 07:40:01 INFO     rasa.nlu.test  - test F1-score: 0.870 (0.020)
"""


def test_parse_log_reads_intent_and_entity_figures():
    out = parse_log(LOG)
    assert out["intent"]["test"]["accuracy"] == {"mean": 0.956, "std": 0.004}
    assert out["intent"]["test"]["f1"] == {"mean": 0.95, "std": 0.005}
    assert out["intent"]["train"]["precision"] == {"mean": 0.997, "std": 0.002}
    assert out["entities"]["DIETClassifier"]["test"]["f1"] == {"mean": 0.87, "std": 0.02}
    assert out["entities"]["DIETClassifier"]["train"]["accuracy"]["mean"] == 0.99


def test_parse_log_without_summary_is_empty():
    assert parse_log("rasa.nlu.test - something else\n") == {"intent": {}, "entities": {}}
