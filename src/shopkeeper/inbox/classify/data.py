"""The labelled messages shipped with the package: `train.jsonl` teaches the model, `heldout.jsonl`
(written separately, never trained on) measures it. One JSON object per line:
{"text": ..., "intent": ..., "sentiment": ...}."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from shopkeeper.inbox.classify.labels import MODEL_INTENTS, SENTIMENTS

DATA_DIR = Path(__file__).parent / "data"
DataSet = Literal["train", "heldout"]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    sentiment: str


def path(name: DataSet) -> Path:
    return DATA_DIR / f"{name}.jsonl"


def load(name: DataSet) -> list[Example]:
    """Every example of a data set; a label outside the known ones is an error, not a new class,
    so a typo in the data cannot quietly add an intent that routing rules do not know."""
    examples = []
    with path(name).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            example = Example(text=row["text"], intent=row["intent"], sentiment=row["sentiment"])
            if example.intent not in MODEL_INTENTS or example.sentiment not in SENTIMENTS:
                raise ValueError(f"{name}.jsonl line {number}: unknown label {example.intent!r}/{example.sentiment!r}")
            examples.append(example)
    return examples


@cache
def digest(name: DataSet) -> str:
    """sha256 of the data file: names the training data in `model_name()`."""
    return hashlib.sha256(path(name).read_bytes()).hexdigest()
