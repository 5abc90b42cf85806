"""llama.cpp plumbing for the local provider: loading each model once per process, and
one generation loop that streams, stops, counts and can be cancelled between tokens.

``llama_cpp`` is imported only when a model is first loaded, so ``import chorus`` stays
fast and works without it.
"""

from __future__ import annotations

import atexit
import codecs
import concurrent.futures
import functools
import importlib.util
import json
import logging
import os
import random
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chorus.core.errors import (
    BadRequestError,
    ConfigError,
    ContextLengthError,
    MissingDependency,
)
from chorus.core.types import Message, TokenLogprob
from chorus.providers._int_range import int_bounds, range_gbnf

__all__ = [
    "Emit",
    "Generated",
    "LoadedModel",
    "Sampling",
    "grammar_for",
    "held_back",
    "llama_installed",
    "load",
    "loaded_models",
    "render_template",
]


def llama_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


# -- prompts, stops and grammars: plain functions --------------------------------------

_FIELD = re.compile(r"\{(prompt|system)\}")


def render_template(template: str, prompt: str, system: str | None) -> str:
    """Fill ``{prompt}`` and ``{system}`` in one pass (other braces stay as written).

    A system message goes before the text when the template has no ``{system}``."""
    values = {"prompt": prompt, "system": system or ""}
    text = _FIELD.sub(lambda m: values[m.group(1)], template)
    if system and "{system}" not in template:
        text = f"{system}\n\n{text}"
    return text


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could start a stop sequence (and so
    must not be streamed yet)."""
    keep = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), keep, -1):
            if text.endswith(s[:n]):
                keep = n
                break
    return keep


def _schema_of(response_format: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema in a response_format (a bare schema, or OpenAI's wrappers);
    None when any JSON will do."""
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), Mapping):
        schema = response_format["json_schema"].get("schema")
        return schema if isinstance(schema, Mapping) else None
    if kind == "json_object":
        schema = response_format.get("schema")
        return schema if isinstance(schema, Mapping) else None
    return response_format


def grammar_for(response_format: Mapping[str, Any]) -> Any:
    """The llama.cpp grammar that makes decoding follow ``response_format``."""
    schema = _schema_of(response_format)
    # Key order kept: the grammar writes properties in the order the schema lists them
    # (a review's reason before its verdict, a step's id first).
    return _grammar(json.dumps(schema) if schema else "")


def schema_gbnf(schema: Mapping[str, Any]) -> str:
    """The GBNF text of a JSON schema: llama-cpp-python's converter, with the integer
    bounds it ignores (``minimum``, ``maximum``, exclusive ones) kept (_int_range.py)."""
    from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter

    class Converter(SchemaConverter):  # type: ignore[misc]
        def visit(self, schema: Any, name: str) -> Any:
            if isinstance(schema, Mapping) and schema.get("type") == "integer" and not any(
                    k in schema for k in ("enum", "const", "$ref", "oneOf", "anyOf")):
                lo, hi = int_bounds(schema)
                if lo is not None or hi is not None:
                    rule = name + "-" if name in RESERVED_NAMES else name or "root"
                    return self._add_rule(  # type: ignore[no-untyped-call]
                        rule, f"{range_gbnf(lo, hi)} space")
            return super().visit(schema, name)  # type: ignore[no-untyped-call]

    converter = Converter(  # type: ignore[no-untyped-call]
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(dict(schema), "schema"), "")
    return str(converter.format_grammar())  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    # A grammar is immutable text; llama.cpp builds a fresh sampler from it per call.
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if not schema_json:
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        return LlamaGrammar.from_string(schema_gbnf(json.loads(schema_json)), verbose=False)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadRequestError(f"cannot turn the JSON schema into a grammar: {exc}") from None


# -- one loaded model ------------------------------------------------------------------

#: Takes each piece of final text and its tokens' log-probabilities (empty unless asked).
Emit = Callable[[str, tuple[TokenLogprob, ...]], None]


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int | None
    seed: int | None
    stop: tuple[str, ...]
    grammar: Any = None
    logprobs: bool = False
    #: Each token's log-probability with this many alternatives (None: not asked).
    top_logprobs: int | None = None
    #: Drop whitespace before the answer (a template ends where the answer starts).
    lstrip: bool = False


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    logprob: float | None = None
    tokens: tuple[TokenLogprob, ...] | None = None


@dataclass(eq=False)
class LoadedModel:
    """One llama.cpp instance, shared by every config entry that names its file.

    Calls run on its own single worker thread and hold ``lock`` while generating, so one
    model serves one generation at a time and never blocks other models' calls."""

    path: Path
    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="chorus-llama"
        )
    )
    _pieces: dict[int, bytes] = field(default_factory=dict)
    _formatter: Any = None
    _scratch: Any = None  # a vocabulary-sized float buffer for _logprob

    def tokenize(self, text: str, *, bos: bool = False) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=bos, special=bos))

    def completion_prompt(self, text: str) -> list[int]:
        return self.tokenize(text, bos=True)

    def chat_prompt(self, messages: Sequence[Message]) -> tuple[list[int], tuple[str, ...]]:
        """The prompt tokens and stop strings of the model's own chat template."""
        if self._formatter is None:
            self._formatter = self._chat_formatter()
        result = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        tokens = self.llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stop = result.stop or ()
        return list(tokens), ((stop,) if isinstance(stop, str) else tuple(stop))

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(
                f"{self.path.name} has no chat template: use mode: completion "
                "with a prompt_template"
            )
        vocab = self.llama._model
        eos, bos = self.llama.token_eos(), self.llama.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(eos) if eos != -1 else "",
            bos_token=vocab.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = bytes(self.llama.detokenize([token]))
        return piece

    def _logprob(self, token: int) -> float:
        """log p(token) under the logits it was just sampled from (the raw model
        distribution, before temperature, penalties or grammar). A pass over the whole
        vocabulary per token: about 0.3 ms for SmolLM2, 2 ms for Gemma on 2 busy cores."""
        import llama_cpp
        import numpy as np

        ptr = llama_cpp.llama_get_logits_ith(self.llama.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self.llama.n_vocab(),))
        if self._scratch is None or self._scratch.shape != logits.shape:
            self._scratch = np.empty_like(logits)
        top = logits.max()
        np.subtract(logits, top, out=self._scratch)
        np.exp(self._scratch, out=self._scratch)
        return float(logits[token] - top - np.log(self._scratch.sum()))

    def _token_logprob(self, token: int, top: int) -> TokenLogprob:
        """The token's log-probability and the ``top`` most likely tokens at its
        position, from the same raw distribution as ``_logprob``."""
        import llama_cpp
        import numpy as np

        ptr = llama_cpp.llama_get_logits_ith(self.llama.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self.llama.n_vocab(),))
        lse = float(logits.max())
        lse += float(np.log(np.exp(logits - lse).sum()))
        alts: tuple[tuple[str, float], ...] = ()
        if top > 0:
            best = np.argpartition(logits, -top)[-top:]
            best = best[np.argsort(-logits[best])]
            alts = tuple((self._text(int(t)), float(logits[t]) - lse) for t in best)
        return TokenLogprob(self._text(token), float(logits[token]) - lse, alts)

    def _text(self, token: int) -> str:
        return self._piece(token).decode("utf-8", errors="replace")

    def _prefill(self, prompt: list[int]) -> None:
        """Evaluate all but the last prompt token, reusing the cached prefix.

        llama-cpp-python evaluates the last prompt token alone when the prompt is cached
        and within one batch when it is not, and the two give logits apart by up to 0.5:
        enough to change a greedy answer. Always leaving the last token to be evaluated
        alone makes an answer independent of what the model ran before."""
        import numpy as np

        llm, head = self.llama, prompt[:-1]
        cached = llm.input_ids[: min(llm.n_tokens, len(head))]
        differs = np.flatnonzero(cached != np.asarray(head[: len(cached)], dtype=cached.dtype))
        keep = int(differs[0]) if len(differs) else len(cached)
        if keep == len(head):
            return
        if not llm._ctx.kv_cache_seq_rm(-1, keep, -1):  # a recurrent model: start over
            llm.reset()
            keep = 0
        llm.n_tokens = keep
        llm.eval(head[keep:])

    def generate(
        self,
        prompt: list[int],
        s: Sampling,
        should_stop: Callable[[], bool],
        emit: Emit | None = None,
    ) -> Generated:
        """Generate from ``prompt`` tokens, holding the model's lock. Checks
        ``should_stop`` before each token; ``emit`` receives the text as it becomes
        final (never part of a stop sequence) with the log-probabilities of the tokens
        decoded since its last call (when asked: ``top_logprobs`` set)."""
        with self.lock:
            return self._generate(prompt, s, should_stop, emit)

    def _generate(
        self,
        prompt: list[int],
        s: Sampling,
        should_stop: Callable[[], bool],
        emit: Emit | None,
    ) -> Generated:
        import llama_cpp

        llm = self.llama
        n_ctx = llm.n_ctx()
        if not prompt:
            raise BadRequestError("the prompt is empty")
        if len(prompt) >= n_ctx:
            raise ContextLengthError(
                f"the prompt has {len(prompt)} tokens, the context window {n_ctx} (n_ctx)"
            )
        room = n_ctx - len(prompt)
        limit = room if s.max_tokens is None or s.max_tokens <= 0 else min(s.max_tokens, room)
        # The same seeding and sampler chain as llama-cpp-python's create_completion.
        llm.set_seed(s.seed if s.seed is not None else random.getrandbits(32))
        self._prefill(prompt)
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        stops = tuple(x for x in s.stop if x)
        longest = max((len(x) for x in stops), default=0)
        text, sent, n, total_lp, lp_sent = "", 0, 0, 0.0, 0
        per_token: list[TokenLogprob] | None = None if s.top_logprobs is None else []
        ends: list[int] = []  # where each token's text ends (a piece carries the tokens
        # it spells, not those of text still held back)
        finish = "length"
        tokens = llm.generate(
            prompt, top_k=40, top_p=s.top_p, min_p=0.05, typical_p=1.0, temp=s.temperature,
            repeat_penalty=1.0, grammar=s.grammar,
        )
        try:
            for token in tokens:
                if should_stop():
                    finish = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                n += 1
                if per_token is not None:
                    per_token.append(self._token_logprob(token, s.top_logprobs or 0))
                    total_lp += per_token[-1].logprob
                elif s.logprobs:
                    total_lp += self._logprob(token)
                new = decoder.decode(self._piece(token))
                if s.lstrip and not text:
                    new = new.lstrip()
                if per_token is not None:
                    ends.append(len(text) + len(new))
                if new:
                    scan = max(0, len(text) - longest + 1)
                    text += new
                    if stops:
                        hits = [i for i in (text.find(x, scan) for x in stops) if i >= 0]
                        if hits:
                            text = text[: min(hits)]
                            finish = "stop"
                            break
                    if emit is not None:
                        ready = len(text) - held_back(text, stops)
                        if ready > sent:
                            upto = lp_sent
                            while upto < len(ends) and ends[upto] <= ready:
                                upto += 1
                            emit(text[sent:ready],
                                 tuple(per_token[lp_sent:upto]) if per_token else ())
                            sent, lp_sent = ready, upto
                if n >= limit:
                    break
        finally:
            tokens.close()
        if emit is not None and len(text) > sent:
            emit(text[sent:], tuple(per_token[lp_sent:]) if per_token else ())
        logprob = total_lp / n if (s.logprobs or per_token is not None) and n else None
        return Generated(text, len(prompt), n, finish, logprob,
                         None if per_token is None else tuple(per_token))


# -- the process-wide cache ------------------------------------------------------------

_cache: dict[tuple[str, int, int], LoadedModel] = {}
_cache_lock = threading.Lock()


def load(path: Path, *, n_ctx: int, n_threads: int) -> LoadedModel:
    """The loaded model for ``path`` with these options, loading it on first use."""
    key = (str(path.resolve()), n_ctx, n_threads)
    found = _cache.get(key)
    if found is not None:
        return found
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            if not _cache:
                atexit.register(_close_all)
            found = _cache[key] = LoadedModel(path, _new_llama(path, n_ctx, n_threads))
        return found


def _close_all() -> None:
    # Freed while the interpreter is still whole: left to Llama.__del__ at shutdown,
    # llama-cpp-python prints a TypeError from half-torn-down modules.
    for loaded in _cache.values():
        loaded.executor.shutdown(wait=True)
        loaded.llama.close()
    _cache.clear()


def _close_devnull() -> None:
    # llama_cpp._utils opens two os.devnull files at import and never closes them.
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        f = getattr(utils, name, None)
        if f is not None and not f.closed:
            f.close()


atexit.register(_close_devnull)  # runs after _close_all (registered later, run first)


def loaded_models() -> list[LoadedModel]:
    """Every model loaded in this process (for tests and diagnostics)."""
    return list(_cache.values())


# llama.cpp's log levels (ggml_log_level); llama-cpp-python's own callback reads an
# older numbering, so its WARN lines ("using full-size SWA cache" on every Gemma load)
# reach stderr as errors. Ours sends them to logging, silent unless the app sets it up.
_LLAMA_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_llama_log = logging.getLogger("chorus.llama_cpp")
_llama_log.addHandler(logging.NullHandler())
_log_callback: Any = None


def _route_llama_log() -> None:
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    last = [logging.INFO]

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, _user: Any) -> None:
        # 5 continues the previous line at its level.
        last[0] = _LLAMA_LEVELS.get(level, last[0]) if level != 5 else last[0]
        if _llama_log.isEnabledFor(last[0]):
            _llama_log.log(last[0], "%s", text.decode("utf-8", "replace").rstrip("\n"))

    _log_callback = callback  # kept alive: llama.cpp holds only the C pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _new_llama(path: Path, n_ctx: int, n_threads: int) -> Any:
    # llama.cpp's OpenMP threads otherwise spin between operations; on a machine whose
    # cores are busy (CI, teammates, a fan-out) that made 2 threads ~20x slower than 1.
    # Read once, when llama_cpp loads its libraries; a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise MissingDependency("llama-cpp-python", "the local provider", extra="local") from None
    _route_llama_log()
    if not path.is_file():
        raise ConfigError(f"file not found: {path}")
    try:
        return Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
            n_threads_batch=n_threads, verbose=False,
        )
    except ValueError as exc:
        raise ConfigError(f"cannot load {path}: {exc}") from None
