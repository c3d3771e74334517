"""The fitted inbox classifier is kept on disk: a later process loads exactly what a fresh fit
would give, and a file that is corrupt, half-written or made for other data, code or libraries
means training again, never a crash or a wrong model."""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

import shopkeeper.inbox.classify as api
from shopkeeper.config import Settings as AppSettings
from shopkeeper.config import get_settings
from shopkeeper.inbox.classify import cache, model_name
from shopkeeper.inbox.classify import data as datasets
from shopkeeper.inbox.classify.data import Example
from shopkeeper.inbox.classify.encoder import Encoder
from shopkeeper.inbox.classify.model import Classifier, Settings

# TF-IDF alone needs no encoder and fits on a few messages in a fraction of a second: enough to
# test the file handling.
QUICK = Settings(features="tfidf")
NAME = "tfidf/logreg@test"


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Records every real training (the settings it ran with)."""
    calls: list[Settings] = []
    train = Classifier.train.__func__  # type: ignore[attr-defined]

    def counted(
        cls: type[Classifier], examples: Sequence[Example], encoder: Encoder | None, name: str, settings: Settings
    ) -> Classifier:
        calls.append(settings)
        return train(cls, examples, encoder, name, settings)  # type: ignore[no-any-return]

    monkeypatch.setattr(Classifier, "train", classmethod(counted))
    return calls


def some_of_the_train_set() -> list[Example]:
    """Every label, a third of the messages: trains in a fraction of the time."""
    return datasets.load("train")[::3]


def quick(directory: Path, settings: Settings = QUICK, name: str = NAME) -> Classifier:
    return cache.load_or_train(directory, some_of_the_train_set, None, name, settings)


def the_file(directory: Path, settings: Settings = QUICK, name: str = NAME) -> Path:
    return cache.cache_path(directory, cache.cache_key(name, settings))


SAMPLE = [e.text for e in datasets.load("heldout")[::4]]


def test_a_cache_hit_gives_the_same_predictions_as_a_fresh_fit(tmp_path: Path, trainings: list[Settings]) -> None:
    encoder = Encoder()  # the model's own features: TF-IDF and the embedding
    fresh = cache.load_or_train(tmp_path, some_of_the_train_set, encoder, model_name())
    assert len(trainings) == 1 and the_file(tmp_path, Settings(), model_name()).is_file()

    hit = cache.load_or_train(tmp_path, some_of_the_train_set, encoder, model_name())
    assert len(trainings) == 1, "the second load trained again"
    assert hit is not fresh and hit.encoder is encoder
    assert hit.classify(SAMPLE) == fresh.classify(SAMPLE)  # every label, probability and score, exactly


@pytest.mark.parametrize(
    "damage",
    ["empty", "garbage", "truncated", "not a dict", "another key", "wrong objects"],
)
def test_a_corrupt_or_mismatched_cache_file_is_retrained_and_replaced(
    tmp_path: Path, trainings: list[Settings], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = quick(tmp_path).classify(SAMPLE)
    path = the_file(tmp_path)
    whole = path.read_bytes()
    payload = pickle.loads(whole)
    damaged = {
        "empty": b"",
        "garbage": b"\x80\x05this is not a pickle at all",
        "truncated": whole[: len(whole) // 2],  # what a reader of a half-written file would see
        "not a dict": pickle.dumps(["a", "list"]),
        "another key": pickle.dumps({**payload, "key": {**payload["key"], "scikit-learn": "0.0.1"}}),
        "wrong objects": pickle.dumps({**payload, "intents": "not a regression"}),
    }[damage]
    path.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        assert quick(tmp_path).classify(SAMPLE) == expected
    assert len(trainings) == 2
    assert "training again" in caplog.text
    assert pickle.loads(path.read_bytes())["key"] == payload["key"]  # replaced by a good one
    quick(tmp_path)
    assert len(trainings) == 2  # and that one is used


def test_a_different_key_misses(tmp_path: Path, trainings: list[Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    quick(tmp_path)
    other_c = Settings(features="tfidf", intent_c=1.0)
    quick(tmp_path, other_c)
    assert trainings == [QUICK, other_c]
    quick(tmp_path, name="tfidf/logreg@other-data")
    assert len(trainings) == 3

    versions = cache.metadata.version
    upgraded = SimpleNamespace(version=lambda name: "999.0" if name == "scikit-learn" else versions(name))
    monkeypatch.setattr(cache, "metadata", upgraded)
    quick(tmp_path)
    assert len(trainings) == 4
    assert len(list(tmp_path.glob("classifier-*.pickle"))) == 4

    monkeypatch.undo()  # back to the real versions: the first file is still there and used
    quick(tmp_path)
    assert len(trainings) == 4


def test_the_key_names_the_data_the_code_and_the_libraries() -> None:
    key = cache.cache_key(NAME, QUICK)
    assert key["model"] == NAME and key["train"] == datasets.digest("train")
    assert {"numpy", "scipy", "scikit-learn", "onnxruntime", "python", "code"} <= set(key)
    assert cache.cache_key(NAME, QUICK) == key  # stable between calls
    assert cache.cache_key(NAME, Settings(features="tfidf", sentiment_c=1.0)) != key


def test_writing_leaves_no_temporary_file_and_prunes_long_unused_ones(tmp_path: Path) -> None:
    month_ago = time.time() - cache.STALE_SECONDS - 60
    stale = tmp_path / "classifier-stale.pickle"
    recent = tmp_path / "classifier-recent.pickle"
    leftover = tmp_path / ".classifier-killed.pickle.123.tmp"
    unrelated = tmp_path / "notes.txt"
    for path in (stale, recent, leftover, unrelated):
        path.write_bytes(b"x")
    for path in (stale, leftover, unrelated):
        os.utime(path, (month_ago, month_ago))

    quick(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([the_file(tmp_path).name, recent.name, unrelated.name])


def test_a_cache_directory_that_cannot_be_written_costs_a_training_not_a_failure(
    tmp_path: Path, trainings: list[Settings], caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the directory should be")
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        first = quick(not_a_directory)
        second = quick(not_a_directory)
    assert second.classify(SAMPLE) == first.classify(SAMPLE)
    assert len(trainings) == 2
    assert "could not write the cache file" in caplog.text


def test_embedding_features_without_an_encoder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need an encoder"):
        cache.load_or_train(tmp_path, some_of_the_train_set, None, model_name())


def test_the_process_classifier_is_cached_where_the_settings_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shopkeeper.inbox.classify.encoder as encoder

    seen: list[Path] = []
    trained = quick(tmp_path / "elsewhere")

    def load_or_train(directory: Path, *args: object, **kwargs: object) -> Classifier:
        seen.append(directory)
        return trained

    monkeypatch.setenv("SHOPKEEPER_CACHE_DIR", str(tmp_path / "configured"))
    get_settings.cache_clear()
    monkeypatch.setattr(api, "_classifier", None)
    monkeypatch.setattr(encoder, "Encoder", lambda: None)
    monkeypatch.setattr(cache, "load_or_train", load_or_train)
    try:
        assert api.classify(["Where is my order #1234?"])[0].model == NAME
    finally:
        get_settings.cache_clear()
    assert seen == [tmp_path / "configured"]


def test_the_cache_directory_defaults_to_the_xdg_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOPKEEPER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert AppSettings().cache_dir == tmp_path / "shopkeeper"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert AppSettings().cache_dir == tmp_path / "home" / ".cache" / "shopkeeper"
