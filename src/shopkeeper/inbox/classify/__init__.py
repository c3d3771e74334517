"""Intent and sentiment of inbound customer messages (SPEC §6), offline on the CPU.

    >>> from shopkeeper.inbox.classify import classify
    >>> classify(["Where is my order #1234?"])[0].intent
    'order_status'

The model (TF-IDF and a MiniLM sentence embedding under two logistic regressions) is trained from
the labelled messages in `data/train.jsonl` the first time a process classifies anything, in a few
seconds, and then kept for the life of the process and in the cache directory (`cache.py`), from
which later processes load it in well under a second. `shopkeeper bench classify` measures it on the
held-out set. docs/inbox-classification.md says why this model and how to retrain it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shopkeeper.inbox.classify.labels import INTENTS, SENTIMENTS, Classification
from shopkeeper.inbox.classify.text import clean_text

if TYPE_CHECKING:
    from shopkeeper.inbox.classify.model import Classifier

__all__ = ["INTENTS", "SENTIMENTS", "Classification", "classify", "clean_text", "model_name"]

_lock = threading.Lock()
_classifier: Classifier | None = None


def model_name() -> str:
    """The name stored with every classification; known without loading the model."""
    from shopkeeper.inbox.classify import data, model

    return model.model_name(data.digest("train"))


def classifier() -> Classifier:
    """The process's classifier, loaded from the cache directory (`Settings.cache_dir`) or trained
    on first use. Callers racing on the first call wait for one load rather than each running
    their own (training costs seconds and ~200 MB)."""
    global _classifier
    if _classifier is None:
        with _lock:
            if _classifier is None:
                from shopkeeper.config import get_settings
                from shopkeeper.inbox.classify import cache, data
                from shopkeeper.inbox.classify.encoder import Encoder

                _classifier = cache.load_or_train(
                    get_settings().cache_dir, lambda: data.load("train"), Encoder(), model_name()
                )
    return _classifier


def classify(texts: Sequence[str]) -> list[Classification]:
    """One `Classification` per text, in order. Quoted replies and signatures are ignored
    (`clean_text`); a text with nothing left gets intent `other`, sentiment neutral. Thread-safe;
    the first call in a process trains the model (a few seconds)."""
    if isinstance(texts, str):
        raise TypeError("classify takes a sequence of texts; wrap a single text in a list")
    if not texts:
        return []
    return classifier().classify(texts)
