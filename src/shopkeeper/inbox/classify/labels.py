"""The labels the classifier gives and the record it returns (no heavy imports: routing rules
validate intents against this list in every process)."""

from __future__ import annotations

from dataclasses import dataclass

#: What a customer wants, as routing rules name it. `other` is never predicted from text: it is
#: given only to a message with nothing to read (an attachment or a sticker alone, a bare forward,
#: a reply that only quotes), where any guessed intent would route it wrongly.
INTENTS: tuple[str, ...] = (
    "question",
    "complaint",
    "order_status",
    "cancellation",
    "billing",
    "praise",
    "feedback",
    "spam",
    "other",
)
#: The intents the model learns from the labelled messages.
MODEL_INTENTS: tuple[str, ...] = INTENTS[:-1]
NO_TEXT_INTENT = "other"
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Classification:
    """One message's intent and sentiment.

    `intent_confidence` is the model's probability of that intent (0..1), so a routing rule can
    leave unsure guesses to a person; `sentiment_score` is P(positive) − P(negative), from −1 to 1,
    so messages sort by how unhappy they are; `model` names the model and training data, so stored
    classifications can be told apart after a retraining."""

    intent: str
    intent_confidence: float
    sentiment: str
    sentiment_score: float
    model: str
