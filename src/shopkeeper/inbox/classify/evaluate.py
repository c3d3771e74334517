"""`shopkeeper bench classify`: train on train.jsonl, measure on heldout.jsonl, time it.

Accuracy and F1 are measured on the held-out messages, which the model never trains on;
`--cv` repeats the model choice itself (which features, how much regularisation) by
cross-validation on the training set alone, so the held-out figures stay an honest estimate.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import RepeatedStratifiedKFold

from shopkeeper.bench.report import LatencySummary
from shopkeeper.inbox.classify import data
from shopkeeper.inbox.classify.encoder import Encoder
from shopkeeper.inbox.classify.labels import MODEL_INTENTS, SENTIMENTS, Classification
from shopkeeper.inbox.classify.model import (
    FEATURE_SETS,
    Classifier,
    Settings,
    fit_regression,
    matrix,
    model_name,
    tfidf,
)
from shopkeeper.inbox.classify.text import clean_text

Phase = Callable[[str], None]
#: The regularisation strengths cross-validation tries (inverse: larger C fits the data closer).
CV_C = (1.0, 10.0, 100.0)


@dataclass(frozen=True, slots=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class TaskScores:
    """How one task (intent or sentiment) did on the held-out set."""

    accuracy: float
    macro_f1: float
    per_class: list[ClassScores]
    labels: list[str]
    #: rows: the true label, columns: the predicted one, in `labels` order.
    confusion: list[list[int]]


@dataclass(frozen=True, slots=True)
class Miss:
    text: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True, slots=True)
class CvScore:
    """One candidate's cross-validated figures on the training set (mean ± standard deviation
    over the folds)."""

    task: str
    features: str
    c: float
    accuracy: float
    accuracy_std: float
    macro_f1: float


@dataclass(slots=True)
class ClassifyFigures:
    """Everything `shopkeeper bench classify` measured, as printed and as written with --json."""

    model: str
    train_examples: int
    heldout_examples: int
    threads: int
    encoder_load_seconds: float = 0.0
    train_seconds: float = 0.0
    intent: TaskScores | None = None
    sentiment: TaskScores | None = None
    single: LatencySummary | None = None
    batch_size: int = 0
    batch_messages_per_second: float = 0.0
    #: held-out messages whose single-message and batch classifications differ (should be 0).
    single_batch_disagreements: int = 0
    rss_before_mb: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    intent_misses: list[Miss] = field(default_factory=list)
    cv: list[CvScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_mb() -> float:
    """The process's resident memory now (Linux), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def scores(expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> TaskScores:
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=list(labels), zero_division=0
    )
    per_class = [
        ClassScores(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    return TaskScores(
        accuracy=float(accuracy_score(expected, predicted)),
        macro_f1=float(f1_score(expected, predicted, labels=list(labels), average="macro", zero_division=0)),
        per_class=per_class,
        labels=list(labels),
        confusion=confusion_matrix(expected, predicted, labels=list(labels)).tolist(),
    )


def cross_validate(
    examples: Sequence[data.Example], encoder: Encoder, folds: int = 5, repeats: int = 3, seed: int = 0
) -> list[CvScore]:
    """Every feature set × C in `CV_C`, for both tasks, by repeated stratified k-fold on the
    training examples. The TF-IDF vocabulary is fitted inside each fold; the embeddings are the
    same whatever the fold (the encoder is not trained), so they are computed once."""
    texts = [clean_text(e.text) for e in examples]
    vectors = encoder.encode(texts)
    results = []
    for task in ("intent", "sentiment"):
        labels = np.asarray([getattr(e, task) for e in examples])
        splits = list(
            RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed).split(texts, labels)
        )
        for features in FEATURE_SETS:
            matrices = []
            for train, test in splits:
                vectorizer = tfidf().fit([texts[i] for i in train]) if features != "embedding" else None
                matrices.append(
                    (
                        matrix(features, vectorizer, [texts[i] for i in train], vectors[train]),
                        matrix(features, vectorizer, [texts[i] for i in test], vectors[test]),
                    )
                )
            for c in CV_C:
                accuracies, f1s = [], []
                for (train, test), (x_train, x_test) in zip(splits, matrices, strict=True):
                    predicted = fit_regression(x_train, labels[train].tolist(), c).predict(x_test)
                    accuracies.append(accuracy_score(labels[test], predicted))
                    f1s.append(f1_score(labels[test], predicted, average="macro"))
                results.append(
                    CvScore(
                        task, features, c, float(np.mean(accuracies)), float(np.std(accuracies)), float(np.mean(f1s))
                    )
                )
    return results


def run_classify_bench(
    threads: int = 1, batch_size: int = 32, rounds: int = 2, cv: bool = False, phase: Phase | None = None
) -> ClassifyFigures:
    """Load the encoder, train as `classify()` does, then measure the held-out set: accuracy,
    per-message latency (one message per call, `rounds` passes), batch throughput and memory."""
    say = phase or (lambda _: None)
    train_set, heldout = data.load("train"), data.load("heldout")
    figures = ClassifyFigures(model_name(data.digest("train")), len(train_set), len(heldout), threads)
    figures.rss_before_mb = rss_mb()

    say("loading the encoder")
    started = time.perf_counter()
    encoder = Encoder(threads=threads)
    figures.encoder_load_seconds = time.perf_counter() - started
    say("training")
    started = time.perf_counter()
    classifier = Classifier.train(train_set, encoder, figures.model, Settings())
    figures.train_seconds = time.perf_counter() - started

    say("classifying the held-out set")
    texts = [e.text for e in heldout]
    batch = classifier.classify(texts)
    figures.intent = scores([e.intent for e in heldout], [r.intent for r in batch], MODEL_INTENTS)
    figures.sentiment = scores([e.sentiment for e in heldout], [r.sentiment for r in batch], SENTIMENTS)
    figures.intent_misses = [
        Miss(e.text, e.intent, r.intent, round(r.intent_confidence, 3))
        for e, r in zip(heldout, batch, strict=True)
        if e.intent != r.intent
    ]

    say("timing single messages")
    classifier.classify(texts[:10])  # warm-up: first runs allocate onnxruntime's buffers
    samples: list[int] = []
    single: list[Classification] = []
    for _ in range(max(1, rounds)):
        single = []
        for text in texts:
            started_ns = time.perf_counter_ns()
            single.extend(classifier.classify([text]))
            samples.append(time.perf_counter_ns() - started_ns)
    figures.single = LatencySummary.from_ns(samples)
    figures.single_batch_disagreements = sum(
        (a.intent, a.sentiment) != (b.intent, b.sentiment) for a, b in zip(single, batch, strict=True)
    )

    say("timing batches")
    figures.batch_size = batch_size
    started = time.perf_counter()
    for _ in range(max(1, rounds)):
        for start in range(0, len(texts), batch_size):
            classifier.classify(texts[start : start + batch_size])
    figures.batch_messages_per_second = max(1, rounds) * len(texts) / (time.perf_counter() - started)
    figures.rss_mb = rss_mb()
    figures.peak_rss_mb = peak_rss_mb()

    if cv:
        say("cross-validating the candidates on the training set")
        figures.cv = cross_validate(train_set, encoder)
    return figures


def render(figures: ClassifyFigures, console: Any, show_misses: bool = False) -> None:
    from rich.table import Table

    assert figures.intent is not None and figures.sentiment is not None and figures.single is not None
    summary = Table(
        title=f"bench classify — {figures.model}, trained on {figures.train_examples}, "
        f"held-out {figures.heldout_examples}, {figures.threads} thread(s)"
    )
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_row("intent accuracy / macro-F1", f"{figures.intent.accuracy:.3f} / {figures.intent.macro_f1:.3f}")
    summary.add_row(
        "sentiment accuracy / macro-F1", f"{figures.sentiment.accuracy:.3f} / {figures.sentiment.macro_f1:.3f}"
    )
    summary.add_row("encoder load", f"{figures.encoder_load_seconds:.2f} s")
    summary.add_row("training (embed + fit)", f"{figures.train_seconds:.2f} s")
    summary.add_row(
        f"one message per call (n={figures.single.count})",
        f"p50 {figures.single.p50_ms:.1f} ms, p99 {figures.single.p99_ms:.1f} ms, max {figures.single.max_ms:.1f} ms",
    )
    summary.add_row(f"batches of {figures.batch_size}", f"{figures.batch_messages_per_second:,.0f} msg/s")
    summary.add_row("single vs batch disagreements", str(figures.single_batch_disagreements))
    summary.add_row(
        "process RSS before → after (peak)",
        f"{figures.rss_before_mb:.0f} → {figures.rss_mb:.0f} MB ({figures.peak_rss_mb:.0f} MB)",
    )
    console.print(summary)
    for title, task in (("intent", figures.intent), ("sentiment", figures.sentiment)):
        table = Table(title=f"held-out {title}, per class")
        for column in ("class", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for row in task.per_class:
            table.add_row(row.label, f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}", str(row.support))
        console.print(table)
    if figures.cv:
        table = Table(title="cross-validation on the training set (5 folds × 3 repeats)")
        for column in ("task", "features", "C", "accuracy", "macro-F1"):
            table.add_column(column, justify="left" if column in ("task", "features") else "right")
        for score in figures.cv:
            table.add_row(
                score.task,
                score.features,
                f"{score.c:g}",
                f"{score.accuracy:.3f} ± {score.accuracy_std:.3f}",
                f"{score.macro_f1:.3f}",
            )
        console.print(table)
    if show_misses:
        for miss in figures.intent_misses:
            text = miss.text.replace("\n", " ⏎ ")
            console.print(
                f"[dim]{miss.expected} → {miss.predicted} ({miss.confidence:.2f}):[/dim] {text[:160]}", highlight=False
            )
    else:
        console.print(f"{len(figures.intent_misses)} held-out intent misses (--misses lists them)")
