"""Fill `pollution_type` on every `report_pollution` parse.

The contract (DESIGN.md): the entity is filled whenever the text says or
implies what is polluted ("冒黑烟" is air, "粪水" is livestock) and is `other`
when it does not. Span extraction cannot promise that: residents describe the
same thing in endless ways, and DIET's span would carry the user's words, not a
canonical value. So this component classifies the whole sentence.

Training: the `report_pollution` examples, labelled by their annotated
`pollution_type` value, or `other` when they carry none. Features: character
1-3-grams (robust to typos and unseen wording), logistic regression.

Prediction (after DIET, before the FallbackClassifier): on a report_pollution
parse, every `pollution_type` entity DIET found is replaced by one entity with
the classifier's canonical value (keeping DIET's span when there was one). On
other intents, only entities whose value is canonical are kept.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)

ENTITY = "pollution_type"
INTENT = "report_pollution"
CANONICAL = ("air", "water", "noise", "solid_waste", "livestock", "other")
MODEL_FILE = "pollution_type.joblib"


def _clean(text: str) -> str:
    return "".join(ch for ch in text.lower() if not ch.isspace())


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class PollutionTypeClassifier(GraphComponent, EntityExtractorMixin):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 8.0, "min_ngram": 1, "max_ngram": 3}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 pipeline: Optional[Any] = None) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._pipeline = pipeline

    @classmethod
    def create(cls, config, model_storage, resource, execution_context: ExecutionContext):
        return cls(config, model_storage, resource)

    @staticmethod
    def label_of(example: Message) -> str:
        for ent in example.get("entities") or []:
            if ent.get("entity") == ENTITY and ent.get("value") in CANONICAL:
                return ent["value"]
        return "other"

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        examples = [e for e in training_data.intent_examples if e.get("intent") == INTENT]
        texts = [_clean(e.get("text")) for e in examples]
        labels = [self.label_of(e) for e in examples]
        if len(set(labels)) < 2:
            log.warning("pollution_type: fewer than two labels in the training data; nothing trained")
            return self._resource
        self._pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(self._config["min_ngram"], self._config["max_ngram"]),
                            sublinear_tf=True),
            LogisticRegression(C=self._config["C"], max_iter=2000, class_weight="balanced"),
        )
        self._pipeline.fit(texts, labels)
        with self._storage.write_to(self._resource) as directory:
            joblib.dump(self._pipeline, Path(directory) / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs):
        pipeline = None
        try:
            with model_storage.read_from(resource) as directory:
                pipeline = joblib.load(Path(directory) / MODEL_FILE)
        except (ValueError, FileNotFoundError, OSError):
            log.warning("pollution_type: no trained classifier in the model")
        return cls(config, model_storage, resource, pipeline)

    def predict(self, text: str) -> tuple[str, float]:
        if self._pipeline is None:
            return "other", 0.0
        probs = self._pipeline.predict_proba([_clean(text)])[0]
        best = int(probs.argmax())
        return str(self._pipeline.classes_[best]), float(probs[best])

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._process_one(message)
        return messages

    def _process_one(self, message: Message) -> None:
        entities = list(message.get("entities") or [])
        ours = [e for e in entities if e.get("entity") == ENTITY]
        rest = [e for e in entities if e.get("entity") != ENTITY]
        intent = (message.get("intent") or {}).get("name")
        text = message.get("text") or ""
        if intent == INTENT and text:
            value, confidence = self.predict(text)
            span = ours[0] if ours else {"start": 0, "end": len(text)}
            rest.append({
                "entity": ENTITY, "value": value, "start": span.get("start", 0), "end": span.get("end", len(text)),
                "confidence_entity": round(confidence, 4), "extractor": self.__class__.__name__,
            })
        else:
            rest.extend(e for e in ours if e.get("value") in CANONICAL)
        message.set("entities", rest, add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
