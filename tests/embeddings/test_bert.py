"""The numpy MiniLM: the same vectors as sentence-transformers, long texts embedded whole,
and an interrupted program that does not wait for an encode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chorus.embeddings._bert import BertEncoder, supported
from chorus.embeddings.local import MiniLMEmbedder, model_folder

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

pytestmark = pytest.mark.embeddings


@pytest.fixture(scope="module")
def encoder() -> BertEncoder:
    return BertEncoder(model_folder())


def _texts() -> list[str]:
    rows = json.loads((DATA / "clinc150" / "data_full.json").read_text())["test"]
    return [t for t, _ in rows[::150]] + ["", "Paris", "Ünïcödé — quotes “like these”."]


def test_matches_sentence_transformers_on_real_text(encoder: BertEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = _texts()
    ours = encoder.encode(texts, batch_size=7)
    theirs = SentenceTransformer(str(model_folder()), device="cpu").encode(
        texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * theirs).sum(1).min()) > 0.9999


def test_long_text_is_embedded_whole(encoder: BertEncoder) -> None:
    head = "A company hires new employees every month and pays each a salary. " * 30
    assert len(encoder.windows(head)) >= 2
    assert all(len(w) <= encoder.window for w in encoder.windows(head))
    a, b, same = encoder.encode([head + "The question is about chemistry and acids.",
                                 head + "The question is about football and its rules.",
                                 head + "The question is about chemistry and acids."])
    # What comes past the first 256 word pieces changes the vector (it used to be dropped).
    assert float(a @ b) < 0.999
    # The same text at another place in the batch: equal to float32's precision (BLAS
    # may block the rows of a product differently, which moves the last bits).
    assert np.allclose(a, same, atol=1e-6)
    # A text that fits in one window is one window: the same vector alone or in a batch.
    short = encoder.encode(["Short text."])[0]
    assert np.allclose(short, encoder.encode(["Short text.", head])[0], atol=1e-5)


def test_only_a_mean_pooled_bert_runs_in_numpy(tmp_path: Path) -> None:
    assert supported(model_folder())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert not supported(tmp_path)
    with pytest.raises(ValueError, match="numpy backend cannot run"):
        MiniLMEmbedder(path=tmp_path, backend="numpy").load()
    with pytest.raises(ValueError, match="backend must be one of"):
        MiniLMEmbedder(backend="onnx")  # type: ignore[arg-type]


async def test_numpy_and_sentence_transformers_backends_agree() -> None:
    texts = ["How do I reset my password?", "how can i reset my password"]
    a = await MiniLMEmbedder(backend="numpy").embed(texts)
    b = await MiniLMEmbedder(backend="sentence-transformers").embed(texts)
    assert float((a * b).sum(1).min()) > 0.9999


STUCK = """
import asyncio, threading
from chorus.embeddings import local

def stuck():
    print("encoding", flush=True)
    threading.Event().wait()   # an encode that never ends

asyncio.run(local._in_daemon_thread(stuck))
"""


def test_ctrl_c_does_not_wait_for_an_encode() -> None:
    with subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as p:
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "encoding"
            p.send_signal(signal.SIGINT)
            # With asyncio.to_thread this never exits: asyncio.run waits for the thread.
            assert p.wait(timeout=30) != 0
        finally:
            if p.poll() is None:
                p.kill()


def test_a_bulk_call_gives_the_vectors_of_the_numpy_path() -> None:
    # From BULK texts on, `auto` sends the texts that fit in one window to torch and keeps
    # the longer ones on numpy: each text's vector must be what a small call gives it.
    from chorus.embeddings import local

    long = "The rain in Spain stays mainly in the plain. " * 60
    texts = (_texts() * (local.BULK // len(_texts()) + 1))[: local.BULK - 1] + [long]
    embedder = MiniLMEmbedder()
    bulk = embedder._encode(texts)
    picks = [0, 1, len(_texts()) - 1, len(texts) - 1]
    small = embedder._encode([texts[i] for i in picks])
    assert (bulk[picks] * small).sum(1).min() > 0.9999
    assert np.linalg.norm(bulk, axis=1).min() > 0.999
