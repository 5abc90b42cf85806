"""LocalModel: a GGUF model run in process by llama.cpp (llama-cpp-python).

Built-in names pick a model shipped in a PyPI package; anything else is a path.

    LocalModel("small", "smollm2-135m")                       # chat, its own template
    LocalModel("base", "gemma3-270m")                         # completion, few-shot template
    LocalModel("mine", "/models/x.gguf", mode="completion",
               prompt_template="Q: {prompt}\\nA:", stop=["\\n"])

In YAML (a relative path is taken from the config file's folder)::

    models:
      small: {provider: local, model: smollm2-135m}
      base: {provider: local, model: gemma3-270m, params: {temperature: 0}}
      mine:
        provider: local
        model: models/x.gguf
        mode: completion              # chat (the GGUF's own chat template) or completion
        prompt_template: "Q: {prompt}\nA:"
        stop: ["\n"]
        n_ctx: 4096                   # default 2048; n_threads default 1
        logprobs: true                # report Completion.logprob (for cascades)

The model is loaded on first use, once per process for each file and load options, and
every call runs on that model's worker thread under its lock. A cancelled call (a lost
fan-out, a passed deadline) stops generating at the next token and frees the model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field

from chorus.config.schema import ProviderConfig
from chorus.core import context
from chorus.core.errors import (
    Cancelled,
    ConfigError,
    MalformedResponse,
    MissingDependency,
    ProviderError,
)
from chorus.core.model import StreamEvent, deltas_of
from chorus.core.registry import BuildContext
from chorus.core.types import (
    Completion,
    Message,
    Request,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from chorus.providers import _bundled, _llama, _local_tools
from chorus.providers._base import Provider, common_kwargs
from chorus.providers._bundled import Mode
from chorus.providers._pace import within

__all__ = ["LocalModel", "LocalConfig", "BUILTIN_MODELS", "build"]

#: The built-in model names and what each is.
BUILTIN_MODELS: Final = {name: b.summary for name, b in _bundled.BUILTINS.items()}

#: Used when a request leaves max_tokens unset (None means: up to the context window).
DEFAULT_MAX_TOKENS: Final = 512
#: llama-cpp-python's own defaults for create_chat_completion / create_completion.
DEFAULT_TEMPERATURE: Final = {"chat": 0.2, "completion": 0.8}
DEFAULT_TOP_P: Final = 0.95


class LocalModel(Provider):
    provider = "local"
    can_stream = True
    # Tool calls and JSON answers under a grammar, logprobs from the sampler; no images.
    default_accepts = frozenset({"tools", "json_schema", "logprobs"})

    def __init__(
        self,
        name: str,
        model: str = "smollm2-135m",
        *,
        mode: Mode | None = None,
        prompt_template: str | None = None,
        stop: Sequence[str] | None = None,
        system: str | None = None,
        n_ctx: int = 2048,
        n_threads: int = 1,
        logprobs: bool = False,
        base_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        builtin = _bundled.BUILTINS.get(model)
        if builtin is None and not _looks_like_path(model):
            known = ", ".join(_bundled.BUILTINS)
            raise ValueError(
                f"unknown local model {model!r}: use a built-in name ({known}) "
                "or the path of a .gguf file"
            )
        self.mode: Mode = mode or (builtin.mode if builtin else "chat")
        # A built-in model's prompting applies while it is used in its own mode.
        own = builtin if builtin is not None and builtin.mode == self.mode else None
        template = prompt_template if prompt_template is not None else (
            own.prompt_template if own else None
        )
        if template is not None and self.mode == "chat":
            raise ValueError("prompt_template is only used with mode: completion")
        if template is not None and "{prompt}" not in template:
            raise ValueError("prompt_template must contain {prompt}")
        self.prompt_template = template or "{prompt}"
        self.stop = tuple(stop if stop is not None else (own.stop if own else ()))
        #: The system message used when a request has none ("" for none at all).
        self.system = system if system is not None else (own.system if own else None)
        self.n_ctx, self.n_threads, self.logprobs = n_ctx, n_threads, logprobs
        self._builtin = builtin
        self._path = None if builtin else _resolve(model, base_dir)
        kwargs.setdefault("local", True)
        kwargs.setdefault("model_id", model if builtin else Path(model).stem)
        if kwargs.get("context_window") is None:
            kwargs["context_window"] = n_ctx
        super().__init__(name, **kwargs)
        self._loaded: _llama.LoadedModel | None = None

    # -- loading ---------------------------------------------------------------------

    def locate(self, *, prepare: bool = True) -> Path:
        """The GGUF file (raises MissingDependency or ConfigError when it is missing).
        A bundled model that ships in chunks is joined once, unless ``prepare`` is False."""
        if self._builtin is not None:
            return self._builtin.locate(prepare)
        assert self._path is not None
        if not self._path.is_file():
            raise ConfigError(f"file not found: {self._path}")
        return self._path

    def usable(self) -> tuple[bool, str]:
        if not _llama.llama_installed():
            return False, _bundled.INSTALL_HINT
        try:
            self.locate(prepare=False)
        except MissingDependency:
            return False, _bundled.INSTALL_HINT
        except ConfigError as exc:
            return False, str(exc)
        return True, "ok"

    def load(self) -> _llama.LoadedModel:
        """The loaded llama.cpp model, loading it now if this process has not yet."""
        if self._loaded is None:
            path = self.locate()
            if not _llama.llama_installed():
                raise MissingDependency("llama-cpp-python", "the local provider", extra="local")
            self._loaded = _llama.load(path, n_ctx=self.n_ctx, n_threads=self.n_threads)
        return self._loaded

    async def _load(self) -> _llama.LoadedModel:
        if self._loaded is not None:
            return self._loaded
        return await asyncio.to_thread(self.load)

    def count_tokens(self, text: str) -> int:
        return len(self.load().tokenize(text))

    # -- calls -----------------------------------------------------------------------

    def _sampling(self, request: Request) -> _llama.Sampling:
        p = request.params
        temperature = p.get("temperature", None)
        top_p = p.get("top_p", None)
        stop = p.get("stop", None) or ()
        fmt = p.get("response_format", None)
        templated = self.mode == "completion" and self.prompt_template != "{prompt}"
        return _llama.Sampling(
            temperature=DEFAULT_TEMPERATURE[self.mode] if temperature is None else temperature,
            top_p=DEFAULT_TOP_P if top_p is None else top_p,
            max_tokens=p.get("max_tokens", DEFAULT_MAX_TOKENS),
            seed=p.get("seed", None),
            stop=tuple(stop) + self.stop,
            grammar=_llama.grammar_for(fmt) if fmt else None,
            logprobs=self.logprobs,
            top_logprobs=p.get("top_logprobs", None) or 0 if p.get("logprobs", None) else None,
            lstrip=templated,
        )

    def _work(
        self,
        loaded: _llama.LoadedModel,
        request: Request,
        should_stop: Callable[[], bool],
        emit: _llama.Emit | None,
    ) -> _llama.Generated:
        """Runs on the model's worker thread: build the prompt, then generate."""
        sampling = self._sampling(request)
        plan = _local_tools.plan_for(request)
        system = request.system if request.system is not None else self.system
        messages = request.messages
        if plan is not None:
            if plan.schema is not None:
                sampling = dataclasses.replace(sampling, grammar=_llama.grammar_for(plan.schema))
            system = f"{system}\n\n{plan.instruction}" if system else plan.instruction
            messages = (Message("system", system),
                        *(m for m in messages if m.role != "system"))
        if any(m.tool_calls or m.role == "tool" or m.parts or m.name for m in messages):
            messages = _local_tools.plain_messages(messages)
        if self.mode == "chat":
            if plan is None and request.system is None and self.system:
                messages = (Message("system", self.system), *messages)
            prompt, template_stops = loaded.chat_prompt(messages)
            sampling = dataclasses.replace(sampling, stop=sampling.stop + template_stops)
        else:
            text = _llama.render_template(self.prompt_template, request.prompt, system)
            prompt = loaded.completion_prompt(text)
        try:
            return loaded.generate(prompt, sampling, should_stop, emit)
        except RuntimeError as exc:  # llama_decode failures surface as RuntimeError
            raise ProviderError(f"llama.cpp failed: {exc}", model=self.name) from None

    async def _run(
        self, request: Request, emit: _llama.Emit | None, cancel: threading.Event
    ) -> _llama.Generated:
        loaded = await self._load()
        flag = context.current().cancelled
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(
            loaded.executor, self._work, loaded, request,
            lambda: cancel.is_set() or flag[0], emit,
        )
        try:
            return await job
        except asyncio.CancelledError:
            # The worker sees this before its next token and lets go of the model.
            cancel.set()
            raise

    def _completion(self, request: Request, result: _llama.Generated, started: float,
                    call_id: str | None = None) -> Completion:
        if result.finish_reason == "cancelled":
            raise Cancelled("the request was cancelled")
        text, finish = result.text, result.finish_reason
        calls: tuple[ToolCall, ...] = ()
        plan = _local_tools.plan_for(request)
        if plan is not None:
            text, calls = _local_tools.read_answer(plan, text, call_id)
            if calls and finish == "stop":
                if not _is_json(calls[0].arguments):
                    # The grammar only ends at the end of the JSON: a stop before it is
                    # one the grammar could not prevent (the model would write none of
                    # the tokens it allowed). Never a finished call with broken arguments.
                    raise MalformedResponse(
                        f"the tool call ended inside its arguments: "
                        f"{calls[0].arguments[-60:]!r}", model=self.name)
                finish = "tool_calls"
        return self.finish(
            text, Usage(result.prompt_tokens, result.completion_tokens), started,
            finish_reason=finish, logprob=result.logprob,
            attributes={"mode": self.mode}, tool_calls=calls, logprobs=result.tokens,
        )

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request = self.prepare(request)
        cancel = threading.Event()
        try:
            result = await within(self._run(request, None, cancel), self.limits,
                                  model=self.name)
        except BaseException:
            cancel.set()  # stop decoding in the worker thread too
            raise
        return self._completion(request, result, started)

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        request = self.prepare(request)
        return self.paced(request, self._stream(request, started), started)

    async def _stream(self, request: Request, started: float) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, tuple[TokenLogprob, ...]] | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(piece: str, logprobs: tuple[TokenLogprob, ...]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (piece, logprobs))
            except RuntimeError:  # the loop closed: nobody is reading any more
                cancel.set()

        # A forced call streams its arguments as they are decoded; other tool answers
        # are known to be calls or text only at the end.
        plan = _local_tools.plan_for(request)
        forced = plan.tools[0].name if plan is not None and plan.mode == "forced" else None
        call_id = _local_tools.call_id()
        job = asyncio.ensure_future(self._run(request, emit if plan is None or forced else None,
                                              cancel))
        job.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            first = True
            while (got := await queue.get()) is not None:
                piece, logprobs = got
                if forced is None:
                    yield TextDelta(piece, self.name, logprobs or None)
                else:
                    yield ToolCallDelta(0, call_id if first else None,
                                        forced if first else None, piece)
                    first = False
            answer = self._completion(request, await job, started, call_id)
            if plan is not None and not forced:
                for delta in deltas_of(answer):
                    yield delta
            elif forced and first:
                yield ToolCallDelta(0, call_id, forced, "")
            yield answer
        finally:
            if not job.done():
                cancel.set()
                job.cancel()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _looks_like_path(model: str) -> bool:
    return model.endswith(".gguf") or "/" in model or "\\" in model or model.startswith("~")


def _resolve(model: str, base_dir: Path | None) -> Path:
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


class LocalConfig(ProviderConfig):
    provider: Literal["local"] = "local"
    #: A built-in name (smollm2-135m, gemma3-270m) or the path of a .gguf file
    #: (relative paths are taken from the config file's folder).
    model: str
    mode: Mode | None = None
    #: Completion mode: the text sent, with {prompt} and {system}.
    prompt_template: str | None = None
    #: Where the answer ends (added to each request's own stop strings).
    stop: list[str] | None = None
    #: The system message used when a request has none ("" for none at all).
    system: str | None = None
    n_ctx: int = Field(2048, ge=16)
    # One thread by default: for these small models llama.cpp's threads mostly wait on
    # each other (measured on 2 cores: 49 vs 20 tok/s for SmolLM2, 31 vs 21 for Gemma),
    # and a single thread each lets two models generate side by side in a fan-out.
    n_threads: int = Field(1, ge=1)
    #: Report the mean token log-probability (Completion.logprob, read by a cascade's
    #: logprob check). Off by default: it costs a pass over the vocabulary per token,
    #: measured at 2-7 % of Gemma 3's speed (262k-token vocabulary).
    logprobs: bool = False


def build(cfg: LocalConfig, b: BuildContext) -> LocalModel:
    base_dir: Path | None = None
    file = b.file
    if file and not file.startswith("<") and Path(file).exists():
        base_dir = Path(file).resolve().parent
    return LocalModel(
        b.name, cfg.model, mode=cfg.mode, prompt_template=cfg.prompt_template, stop=cfg.stop,
        system=cfg.system, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, logprobs=cfg.logprobs,
        base_dir=base_dir,
        **common_kwargs(cfg),
    )
