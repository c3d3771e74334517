"""The classifier: word and character TF-IDF beside a sentence embedding, two logistic regressions.

TF-IDF catches the shop's own vocabulary ("refund", "tracking", "unsubscribe", order numbers,
"5 stars"); the embedding carries meaning to phrasings the training set never used. Together they
beat either alone in cross-validation (docs/inbox-classification.md). Training on the few hundred
committed examples takes a few seconds, so the model is trained when first needed rather than
shipped as a pickle: what runs is always what the data says, and retraining is editing a file.
(`cache.py` keeps the fitted model between processes, keyed by the data, this code and the
libraries, so that holds for it too.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from threadpoolctl import threadpool_limits

from shopkeeper.inbox.classify.data import Example
from shopkeeper.inbox.classify.encoder import ENCODER_NAME, Encoder
from shopkeeper.inbox.classify.labels import NO_TEXT_INTENT, Classification
from shopkeeper.inbox.classify.text import clean_text

FeatureSet = Literal["tfidf", "embedding", "tfidf+embedding"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("tfidf", "embedding", "tfidf+embedding")


@dataclass(frozen=True, slots=True)
class Settings:
    """What cross-validation on the training set chose (5 folds × 3 repeats; the docs have the
    table): both feature kinds, and the regularisation that did best for each task."""

    features: FeatureSet = "tfidf+embedding"
    intent_c: float = 10.0
    sentiment_c: float = 100.0


def tfidf() -> FeatureUnion:
    """Words and word pairs, and character 2–5-grams within words: the latter read through typos
    ("ordr", "cancle") and inflections the word features see as unrelated."""
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ]
    )


def matrix(
    features: FeatureSet, vectorizer: FeatureUnion | None, texts: Sequence[str], vectors: npt.NDArray[np.float32] | None
) -> sparse.csr_matrix:
    """The feature rows of cleaned texts, from a fitted vectorizer and/or their embeddings."""
    parts: list[Any] = []
    if features != "embedding":
        assert vectorizer is not None
        parts.append(vectorizer.transform(texts))
    if features != "tfidf":
        assert vectors is not None
        parts.append(sparse.csr_matrix(vectors))
    return sparse.hstack(parts, format="csr")


def fit_regression(x: sparse.csr_matrix, labels: Sequence[str], c: float) -> LogisticRegression:
    """A multinomial logistic regression, fitted on one BLAS thread: the problem is small, and
    OpenBLAS's threads spinning against a busy second core made the fit ten times slower (3 s
    instead of 0.3 s) while the machine served other work."""
    with threadpool_limits(limits=1, user_api="blas"):
        return LogisticRegression(C=c, max_iter=5000).fit(x, np.asarray(labels))


class Classifier:
    """A trained classifier. `classify` is safe to call from several threads at once: nothing in it
    changes after training."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        encoder: Encoder | None,
        vectorizer: FeatureUnion | None,
        intents: LogisticRegression,
        sentiments: LogisticRegression,
    ) -> None:
        self.name = name
        self.settings = settings
        self.encoder = encoder
        self.vectorizer = vectorizer
        self.intents = intents
        self.sentiments = sentiments
        classes = list(sentiments.classes_)
        self._positive = classes.index("positive")
        self._negative = classes.index("negative")

    @classmethod
    def train(
        cls, examples: Sequence[Example], encoder: Encoder | None, name: str, settings: Settings | None = None
    ) -> Classifier:
        """Fit on labelled examples (their texts go through `clean_text` as messages will)."""
        settings = settings or Settings()
        texts = [clean_text(e.text) for e in examples]
        vectors = None
        if settings.features != "tfidf":
            if encoder is None:
                raise ValueError(f"features {settings.features!r} need an encoder")
            vectors = encoder.encode(texts)
        vectorizer = None
        if settings.features != "embedding":
            vectorizer = tfidf().fit(texts)
        x = matrix(settings.features, vectorizer, texts, vectors)
        intents = fit_regression(x, [e.intent for e in examples], settings.intent_c)
        sentiments = fit_regression(x, [e.sentiment for e in examples], settings.sentiment_c)
        return cls(name, settings, encoder if vectors is not None else None, vectorizer, intents, sentiments)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        cleaned = [clean_text(t) for t in texts]
        results: list[Classification | None] = [None] * len(cleaned)
        todo = [i for i, text in enumerate(cleaned) if text]
        for i, text in enumerate(cleaned):
            if not text:
                results[i] = Classification(NO_TEXT_INTENT, 1.0, "neutral", 0.0, self.name)
        if todo:
            batch = [cleaned[i] for i in todo]
            vectors = self.encoder.encode(batch) if self.encoder is not None else None
            x = matrix(self.settings.features, self.vectorizer, batch, vectors)
            intent_p = self.intents.predict_proba(x)
            sentiment_p = self.sentiments.predict_proba(x)
            intent_classes = self.intents.classes_
            sentiment_classes = self.sentiments.classes_
            for row, i in enumerate(todo):
                best = int(np.argmax(intent_p[row]))
                mood = int(np.argmax(sentiment_p[row]))
                score = float(sentiment_p[row, self._positive] - sentiment_p[row, self._negative])
                results[i] = Classification(
                    intent=str(intent_classes[best]),
                    intent_confidence=float(intent_p[row, best]),
                    sentiment=str(sentiment_classes[mood]),
                    sentiment_score=max(-1.0, min(1.0, score)),
                    model=self.name,
                )
        return [r for r in results if r is not None]


def model_name(train_digest: str, settings: Settings | None = None) -> str:
    """e.g. `tfidf+all-MiniLM-L6-v2-int8/logreg@3f2a9c1d04e7`: the features, the learner and the
    first 12 hex digits of the training file's sha256."""
    settings = settings or Settings()
    features = settings.features.replace("embedding", ENCODER_NAME)
    return f"{features}/logreg@{train_digest[:12]}"
