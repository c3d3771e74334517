"""The inbox classifier: every inbound message gets an intent and a sentiment from a model that
runs offline on the CPU (SPEC §6), measured on held-out messages it never trained on."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

import shopkeeper.inbox.classify as api
from shopkeeper.inbox.classify import INTENTS, SENTIMENTS, Classification, classify, clean_text, model_name
from shopkeeper.inbox.classify import data as datasets
from shopkeeper.inbox.classify.labels import MODEL_INTENTS
from shopkeeper.inbox.classify.model import Classifier

# Measured once on the held-out set when the model was chosen (docs/inbox-classification.md):
# intent accuracy 0.925, sentiment accuracy 0.892. The thresholds leave a margin for a retraining
# on edited data; the intent one is the target the issue set.
HELDOUT_INTENT_ACCURACY = 0.85
HELDOUT_SENTIMENT_ACCURACY = 0.85


@pytest.fixture(scope="module")
def model() -> Classifier:
    """The process's classifier, trained once for the whole module."""
    return api.classifier()


@pytest.fixture(scope="module")
def heldout(model: Classifier) -> tuple[list[datasets.Example], list[Classification]]:
    examples = datasets.load("heldout")
    return examples, classify([e.text for e in examples])


# --- the data ------------------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_the_training_set_has_at_least_forty_messages_per_intent_and_every_sentiment() -> None:
    train = datasets.load("train")
    intents = Counter(e.intent for e in train)
    assert set(intents) == set(MODEL_INTENTS)
    assert min(intents.values()) >= 40
    assert set(Counter(e.sentiment for e in train)) == set(SENTIMENTS)


def test_the_heldout_set_has_at_least_two_hundred_messages_and_twenty_per_intent() -> None:
    heldout = datasets.load("heldout")
    assert len(heldout) >= 200
    intents = Counter(e.intent for e in heldout)
    assert set(intents) == set(MODEL_INTENTS)
    assert min(intents.values()) >= 20


def test_no_heldout_message_repeats_or_nearly_repeats_a_training_message() -> None:
    train, heldout = datasets.load("train"), datasets.load("heldout")

    def norm(text: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", text.lower()))

    for examples in (train, heldout):
        assert len({norm(e.text) for e in examples}) == len(examples), "a duplicate inside one set"
    assert not {norm(e.text) for e in train} & {norm(e.text) for e in heldout}
    train_words = [_words(e.text) for e in train]
    nearest = []
    for example in heldout:
        words = _words(example.text)
        nearest.append(max(len(words & other) / len(words | other) for other in train_words))
    # Short messages on the same subject share words ("cancel my order"); a paraphrase of a
    # training line would share most of them.
    assert max(nearest) < 0.6, max(nearest)
    assert float(np.mean(nearest)) < 0.3


def test_the_data_files_ship_with_the_package() -> None:
    from pathlib import Path

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"inbox/classify/data/*.jsonl"' in pyproject
    assert '"inbox/classify/data/*.txt"' in pyproject


# --- accuracy on the held-out set ------------------------------------------------------------------


def test_heldout_intent_accuracy_reaches_the_target(
    heldout: tuple[list[datasets.Example], list[Classification]],
) -> None:
    examples, results = heldout
    accuracy = sum(e.intent == r.intent for e, r in zip(examples, results, strict=True)) / len(examples)
    assert accuracy >= HELDOUT_INTENT_ACCURACY, accuracy


def test_heldout_sentiment_accuracy_stays_near_what_was_measured(
    heldout: tuple[list[datasets.Example], list[Classification]],
) -> None:
    examples, results = heldout
    accuracy = sum(e.sentiment == r.sentiment for e, r in zip(examples, results, strict=True)) / len(examples)
    assert accuracy >= HELDOUT_SENTIMENT_ACCURACY, accuracy


def test_every_intent_is_recognised_on_most_of_its_heldout_messages(
    heldout: tuple[list[datasets.Example], list[Classification]],
) -> None:
    examples, results = heldout
    for intent in MODEL_INTENTS:
        pairs = [(e, r) for e, r in zip(examples, results, strict=True) if e.intent == intent]
        recall = sum(r.intent == intent for _, r in pairs) / len(pairs)
        assert recall >= 0.7, (intent, recall)


# --- obvious messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Where is my order #1234?", "order_status"),
        ("I want to cancel my subscription", "cancellation"),
        ("You charged me twice", "billing"),
        ("Buy cheap pills now!!! click here", "spam"),
        ("Thank you so much, the team was wonderful!", "praise"),
        ("The lamp arrived broken and the shade is torn.", "complaint"),
        ("Do you ship to Norway?", "question"),
        ("4 stars. Comfortable, but the colour is darker than in the photos.", "feedback"),
    ],
)
def test_obvious_messages_get_the_obvious_intent(model: Classifier, text: str, intent: str) -> None:
    assert classify([text])[0].intent == intent


def test_sentiment_follows_the_tone(model: Classifier) -> None:
    angry, calm, happy = classify(
        [
            "This is the worst service ever, the parcel is ruined and nobody answers!",
            "Can I change the delivery address on my order?",
            "Thank you so much, everything was perfect!",
        ]
    )
    assert (angry.sentiment, calm.sentiment, happy.sentiment) == ("negative", "neutral", "positive")
    assert angry.sentiment_score < -0.5 < calm.sentiment_score < 0.5 < happy.sentiment_score


def test_a_message_with_no_text_of_its_own_is_other_and_neutral(model: Classifier) -> None:
    quoted_only = "> Hi Ann, your parcel is on its way.\n> Best, the shop"
    for result in classify(["", "   \n\t ", quoted_only]):
        assert result == Classification("other", 1.0, "neutral", 0.0, model_name())
    assert "other" in INTENTS


def test_a_reply_is_classified_by_what_the_customer_wrote_not_by_the_quote(model: Classifier) -> None:
    reply = (
        "Thank you so much, that solved it!\n\n"
        "On Tue, 3 Jun 2025 at 10:02, Shop <help@shop.example> wrote:\n"
        "> We are sorry the blender arrived broken and the order is late.\n"
        "> I want to complain, this is terrible, cancel my order and refund me.\n"
    )
    result = classify([reply])[0]
    assert (result.intent, result.sentiment) == ("praise", "positive")


def test_scores_stay_in_their_ranges_and_name_the_model(model: Classifier) -> None:
    texts = [e.text for e in datasets.load("heldout")[::7]]
    for result in classify(texts):
        assert result.intent in INTENTS and result.sentiment in SENTIMENTS
        assert 0.0 <= result.intent_confidence <= 1.0
        assert -1.0 <= result.sentiment_score <= 1.0
        assert result.model == model_name()


def test_the_model_name_names_the_training_data() -> None:
    assert model_name().endswith("@" + datasets.digest("train")[:12])
    assert "all-MiniLM-L6-v2-int8" in model_name()


# --- the call ------------------------------------------------------------------------------------


def test_batch_and_single_calls_agree(model: Classifier) -> None:
    texts = [e.text for e in datasets.load("heldout")[::5]] + ["", "Where is my order #1234?"]
    batch = classify(texts)
    single = [classify([text])[0] for text in texts]
    for one, together in zip(single, batch, strict=True):
        assert (one.intent, one.sentiment) == (together.intent, together.sentiment)
        assert one.intent_confidence == pytest.approx(together.intent_confidence, abs=1e-4)
        assert one.sentiment_score == pytest.approx(together.sentiment_score, abs=1e-4)


def test_an_empty_batch_needs_no_model_and_a_bare_string_is_refused() -> None:
    assert classify([]) == []
    with pytest.raises(TypeError):
        classify("Where is my order?")  # type: ignore[arg-type]


@pytest.fixture
def untrained(model: Classifier, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The process as if nothing had classified yet, with a first load (training, or reading the
    cache file) that takes a while and records each time it runs (it hands back the trained model
    instead of loading it again)."""
    import shopkeeper.inbox.classify.cache as cache
    import shopkeeper.inbox.classify.encoder as encoder

    calls: list[str] = []

    def slow_load(*args: object, **kwargs: object) -> Classifier:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)
        return model

    monkeypatch.setattr(api, "_classifier", None)
    monkeypatch.setattr(cache, "load_or_train", slow_load)
    monkeypatch.setattr(encoder, "Encoder", lambda: None)
    yield calls


def test_threads_racing_on_the_first_call_load_the_model_once(untrained: list[str]) -> None:
    start = threading.Barrier(6)
    results: dict[int, list[Classification]] = {}

    def call(n: int) -> None:
        start.wait()
        results[n] = classify(["Where is my order #1234?", "You charged me twice"])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(untrained) == 1
    assert len(results) == 6
    assert all(r == results[0] for r in results.values())
    assert [r.intent for r in results[0]] == ["order_status", "billing"]


def test_concurrent_calls_give_the_same_answers_as_one_call(model: Classifier) -> None:
    texts = [e.text for e in datasets.load("heldout")[:40]]
    expected = classify(texts)
    results: list[list[Classification]] = [[] for _ in range(4)]

    def call(n: int) -> None:
        results[n] = classify(texts[n::4])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for n in range(4):
        assert [(r.intent, r.sentiment) for r in results[n]] == [(r.intent, r.sentiment) for r in expected[n::4]]


# --- the encoder ---------------------------------------------------------------------------------


def test_the_tokenizer_splits_words_as_the_models_own_tokenizer_does(model: Classifier) -> None:
    # Reference ids from all-MiniLM-L6-v2's tokenizer.json (padding and truncation off).
    assert model.encoder is not None
    tokenizer = model.encoder._tokenizer
    assert tokenizer.encode("Where is my order #1234?").ids == [
        101,
        2073,
        2003,
        2026,
        2344,
        1001,
        13138,
        2549,
        1029,
        102,
    ]
    assert tokenizer.encode("Naïve café: ordr cancelled 😡 – £12.50").ids == [
        *(101, 15743, 7668, 1024, 2030, 13626, 8014, 100, 1516, 14534, 2475, 1012, 2753, 102)
    ]


def test_the_embedding_puts_paraphrases_closer_than_unrelated_messages(model: Classifier) -> None:
    assert model.encoder is not None
    late, late_again, spam = model.encoder.encode(
        [
            "My parcel still hasn't arrived, where is it?",
            "The package I ordered never came. Can you track it?",
            "Make money fast with crypto, join my channel",
        ]
    )
    assert np.linalg.norm(late) == pytest.approx(1.0, abs=1e-5)
    assert float(late @ late_again) > float(late @ spam) + 0.2


# --- clean_text ----------------------------------------------------------------------------------


def test_clean_text_drops_quoted_lines_reply_headers_signatures_and_phone_footers() -> None:
    assert clean_text("Thanks!\r\n\r\nOn Tue, 3 Jun 2025 at 10:02, Shop <a@b.example>\r\nwrote:\r\n> old") == "Thanks!"
    assert clean_text("Cancel it\nFrom: Shop <a@b.example>\nSent: Monday\nTo: me\nSubject: Re: x") == "Cancel it"
    assert clean_text("Where is it?\n\n-----Original Message-----\nFrom: x") == "Where is it?"
    assert clean_text("Le mar. 3 juin 2025, Shop <a@b.example> a écrit :\n> x") == ""
    assert clean_text("hello  there\n\n\n\n> quoted\nbye\n-- \nAnn Smith\nCEO") == "hello there\n\nbye"
    assert clean_text("ok thanks\nSent from my iPhone") == "ok thanks"


def test_clean_text_keeps_ordinary_lines_that_merely_start_like_a_header() -> None:
    text = "I got the wrong item.\nFrom: the label it was meant for my neighbour"
    assert clean_text(text) == text


def test_clean_text_cuts_long_text_at_a_word_boundary() -> None:
    cleaned = clean_text("refund " * 1000)
    assert len(cleaned) <= 2000
    assert cleaned.endswith("refund")
