"""The fitted classifier kept on disk, so that only the first process after a change trains it.

Training embeds every training message (most of its ~4 s) and fits two regressions; a process
that finds a cache file made from the same data, code and library versions loads the fitted
TF-IDF vocabulary and regressions from it in milliseconds instead. The encoder itself is never
cached: it is loaded from its wheel either way. The file is a pickle, so the cache directory must
be as trusted as the installed code (it is the user's own, created private).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from shopkeeper.inbox.classify import data, labels, model, text
from shopkeeper.inbox.classify import encoder as encoder_module
from shopkeeper.inbox.classify.data import Example
from shopkeeper.inbox.classify.encoder import Encoder
from shopkeeper.inbox.classify.model import Classifier, Settings

log = logging.getLogger(__name__)

#: Bumped when what the file holds changes shape.
FORMAT = 1
#: The libraries whose objects are pickled (scikit-learn's, numpy's and scipy's) or whose
#: arithmetic made them (the encoder's vectors come from onnxruntime and tokenizers).
LIBRARIES = ("numpy", "scipy", "scikit-learn", "threadpoolctl", "onnxruntime", "tokenizers")
# The modules whose code decides what training produces: any edit to them misses the cache.
_CODE = (data, encoder_module, labels, model, text)
_PREFIX = "classifier-"
_SUFFIX = ".pickle"
#: Files of other keys (older data, code or libraries) unused for this long are deleted when a new
#: one is written, so that retraining now and then does not fill the disk.
STALE_SECONDS = 30 * 24 * 3600


def cache_key(name: str, settings: Settings) -> dict[str, str]:
    """Everything the fitted classifier depends on. `name` (`model_name()`) already names the
    features and the training data; the rest is what a name leaves out."""
    code = hashlib.sha256()
    for module in _CODE:
        assert module.__file__ is not None
        code.update(Path(module.__file__).read_bytes())
    code.update(encoder_module.VOCAB_PATH.read_bytes())
    key = {
        "format": str(FORMAT),
        "model": name,
        "settings": repr(settings),
        "train": data.digest("train"),
        "encoder": encoder_module.MODEL_SHA256,
        "code": code.hexdigest(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": platform.machine(),
    }
    for library in LIBRARIES:
        key[library] = metadata.version(library)
    return key


def cache_path(directory: Path, key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return directory / f"{_PREFIX}{digest[:24]}{_SUFFIX}"


def load_or_train(
    directory: Path,
    examples: Callable[[], Sequence[Example]],
    encoder: Encoder | None,
    name: str,
    settings: Settings | None = None,
) -> Classifier:
    """The classifier `Classifier.train(examples(), encoder, name, settings)` would give, from the
    cache in `directory` when it holds one with the same key, else trained and written there.
    A missing, unreadable, corrupt or mismatched file means training (and overwriting it); a
    directory that cannot be written means training every time, with a warning, never a failure."""
    settings = settings or Settings()
    if settings.features != "tfidf" and encoder is None:
        raise ValueError(f"features {settings.features!r} need an encoder")
    key = cache_key(name, settings)
    path = cache_path(directory, key)
    loaded = _read(path, key, encoder, name, settings)
    if loaded is not None:
        return loaded
    classifier = Classifier.train(examples(), encoder, name, settings)
    payload = {
        "key": key,
        "vectorizer": classifier.vectorizer,
        "intents": classifier.intents,
        "sentiments": classifier.sentiments,
    }
    try:
        _write_atomically(path, payload)
        _prune(directory, keep=path)
    except (OSError, pickle.PicklingError) as exc:
        log.warning("inbox classifier: could not write the cache file %s (%s); training again next time", path, exc)
    return classifier


def _read(path: Path, key: dict[str, str], encoder: Encoder | None, name: str, settings: Settings) -> Classifier | None:
    try:
        with path.open("rb") as file:
            payload = pickle.load(file)
    except FileNotFoundError:
        return None
    except Exception:  # truncated, corrupt, from another version: all mean "train"
        log.warning("inbox classifier: cache file %s is unreadable; training again", path, exc_info=True)
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        log.warning("inbox classifier: cache file %s was made for something else; training again", path)
        return None
    vectorizer, intents, sentiments = payload.get("vectorizer"), payload.get("intents"), payload.get("sentiments")
    needs_vectorizer = settings.features != "embedding"
    if (
        not isinstance(intents, LogisticRegression)
        or not isinstance(sentiments, LogisticRegression)
        or (needs_vectorizer and not isinstance(vectorizer, FeatureUnion))
    ):
        log.warning("inbox classifier: cache file %s holds the wrong objects; training again", path)
        return None
    with suppress(OSError):
        os.utime(path)  # in use: keeps it from being pruned as stale
    return Classifier(
        name,
        settings,
        encoder if settings.features != "tfidf" else None,
        vectorizer if needs_vectorizer else None,
        intents,
        sentiments,
    )


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`: a concurrent reader
    sees the old file or the whole new one, never a part."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            # No fsync: a file that a power cut left empty or torn only means training once more.
            pickle.dump(payload, file, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise


def _prune(directory: Path, keep: Path) -> None:
    """Delete cache files unused for `STALE_SECONDS`, and temporary files a killed process left
    (older than an hour: a live writer finishes in well under a second)."""
    now = time.time()
    stale = [(path, now - STALE_SECONDS) for path in directory.glob(f"{_PREFIX}*{_SUFFIX}") if path != keep]
    stale += [(path, now - 3600) for path in directory.glob(f".{_PREFIX}*.tmp")]
    for path, cutoff in stale:
        with suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
