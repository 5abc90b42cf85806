"""The local provider on the bundled llama.cpp models (SmolLM2 chat, Gemma 3 base)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from chorus.config.builder import Config
from chorus.core.errors import ConfigError
from chorus.core.model import Model
from chorus.core.types import Completion, Message, Request, TextDelta
from chorus.providers import _llama
from chorus.providers.local import LocalModel

FRANCE = "What is the capital of France?"


def _usable(model: LocalModel) -> LocalModel:
    ok, why = model.usable()
    if not ok:
        pytest.skip(why)
    model.load()
    return model


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LocalModel]:
    yield _usable(LocalModel("smollm2", "smollm2-135m", logprobs=True))


@pytest.fixture(scope="module")
def gemma() -> Iterator[LocalModel]:
    yield _usable(LocalModel("gemma", "gemma3-270m"))


async def _stream(model: Model, request: Request) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    final: Completion | None = None
    async for event in model.stream(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            final = event
    assert final is not None
    return deltas, final


# -- answers -----------------------------------------------------------------------------


@pytest.mark.local
async def test_smollm2_knows_the_capital_of_france(smollm2: LocalModel) -> None:
    c = await smollm2.complete(Request.of(FRANCE, temperature=0, max_tokens=32))
    assert "Paris" in c.text
    assert c.model == "smollm2"
    assert c.usage.input_tokens > 5 and 0 < c.usage.output_tokens <= 32
    assert c.cost_usd == 0.0
    assert c.logprob is not None and c.logprob < 0.0
    assert c.trace is not None and c.trace.attributes["provider"] == "local"


@pytest.mark.local
async def test_logprob_is_the_mean_of_llama_cpp_token_logprobs(smollm2: LocalModel) -> None:
    from llama_cpp import Llama

    c = await smollm2.complete(Request.of(FRANCE, temperature=0, max_tokens=8))
    assert c.logprob is not None and c.logprob < 0.0
    unscored = LocalModel("unscored", "smollm2-135m", logprobs=False)
    assert unscored.load() is smollm2.load()
    assert (await unscored.complete(Request.of(FRANCE, max_tokens=2))).logprob is None

    # llama-cpp-python's own logprobs need every position's logits kept (logits_all).
    prompt, _ = smollm2.load().chat_prompt(
        [Message("system", "Answer in English."), Message("user", FRANCE)]
    )
    reference = Llama(str(smollm2.locate()), n_ctx=256, logits_all=True, verbose=False)
    try:
        out = reference.create_completion(prompt, max_tokens=8, temperature=0, logprobs=1)
    finally:
        reference.close()
    choice = out["choices"][0]  # type: ignore[index]
    assert choice["text"] == c.text
    expected = choice["logprobs"]["token_logprobs"]
    assert len(expected) == c.usage.output_tokens
    assert c.logprob == pytest.approx(sum(expected) / len(expected), abs=1e-3)


@pytest.mark.local
async def test_gemma_base_model_answers_in_one_line(gemma: LocalModel) -> None:
    c = await gemma.complete(Request.of(FRANCE, temperature=0, max_tokens=24))
    assert "Paris" in c.text
    assert "\n" not in c.text
    assert c.finish_reason == "stop"


@pytest.mark.local
async def test_json_schema_is_enforced_by_the_grammar(smollm2: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {
            "colour": {"type": "string", "enum": ["red", "green", "blue"]},
            "count": {"type": "integer"},
        },
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    c = await smollm2.complete(
        Request.of("Pick a colour and how many apples you see.", temperature=0,
                   max_tokens=48, response_format=schema)
    )
    value = json.loads(c.text)
    assert set(value) == {"colour", "count"}
    assert value["colour"] in {"red", "green", "blue"}
    assert isinstance(value["count"], int)


# -- parameters ----------------------------------------------------------------------------


@pytest.mark.local
async def test_stream_pieces_add_up_to_the_completion(smollm2: LocalModel) -> None:
    request = Request.of("Name three fruits.", temperature=0, max_tokens=24)
    deltas, final = await _stream(smollm2, request)
    assert len(deltas) > 1
    assert "".join(deltas) == final.text
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    whole = await smollm2.complete(request)
    assert (whole.text, whole.usage) == (final.text, final.usage)


@pytest.mark.local
async def test_max_tokens_is_honoured(smollm2: LocalModel) -> None:
    c = await smollm2.complete(Request.of("Tell me a long story.", temperature=0, max_tokens=5))
    assert 0 < c.usage.output_tokens <= 5
    assert c.finish_reason == "length"


@pytest.mark.local
async def test_same_seed_same_text(smollm2: LocalModel) -> None:
    request = Request.of("Write a sentence about the sea.", temperature=1.0, seed=1234,
                         max_tokens=16)
    first = await smollm2.complete(request)
    # Whatever ran in between (here: the same prompt, so its prefix is cached) must not
    # change a seeded answer.
    second = await smollm2.complete(request)
    await smollm2.complete(Request.of("Hi", temperature=0, max_tokens=2))
    third = await smollm2.complete(request)
    assert first.text == second.text == third.text


@pytest.mark.local
async def test_stop_sequence_cuts_the_text(smollm2: LocalModel) -> None:
    request = Request.of("List the days of the week.", temperature=0, max_tokens=24)
    full = (await smollm2.complete(request)).text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip(), full
    cut = await smollm2.complete(request.with_params(stop=[stop]))
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


@pytest.mark.local
def test_count_tokens_uses_the_model_tokenizer(smollm2: LocalModel) -> None:
    assert smollm2.count_tokens("") == 0
    assert 0 < smollm2.count_tokens("Paris") < smollm2.count_tokens("Paris is in France.")


# -- cancellation and sharing --------------------------------------------------------------


COUNT = "Count from 1 to 500, separated by commas."


@pytest.mark.local
def test_generation_checks_for_a_stop_between_tokens(smollm2: LocalModel) -> None:
    loaded = smollm2.load()
    prompt, _ = loaded.chat_prompt([Message("user", COUNT)])
    pieces: list[str] = []
    sampling = _llama.Sampling(temperature=0, top_p=1.0, max_tokens=200, seed=0, stop=())
    result = loaded.generate(prompt, sampling, lambda: len(pieces) >= 5,
                             lambda piece, _logprobs: pieces.append(piece))
    assert result.finish_reason == "cancelled"
    assert 5 <= result.completion_tokens < 12
    assert result.text == "".join(pieces)
    assert not loaded.lock.locked()


@pytest.mark.local
async def test_cancelling_a_generation_frees_the_model(smollm2: LocalModel) -> None:
    count = Request.of(COUNT, temperature=0)
    probe = await smollm2.complete(count.with_params(max_tokens=16))
    assert probe.finish_reason == "length"
    per_token = probe.latency_s / probe.usage.output_tokens  # an overestimate
    long = count.with_params(max_tokens=400)

    task = asyncio.ensure_future(smollm2.complete(long))
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    cancelled_at = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await task
    quick = await smollm2.complete(Request.of("Hi", temperature=0, max_tokens=2))
    waited = time.perf_counter() - cancelled_at
    assert quick.text
    assert waited < 0.25 * 400 * per_token, (waited, per_token)


@pytest.mark.local
async def test_a_deadline_stops_the_generation(smollm2: LocalModel) -> None:
    from chorus.core import context
    from chorus.core.errors import DeadlineExceeded
    from chorus.core.model import call

    long = Request.of(COUNT, temperature=0, max_tokens=400)
    started = time.perf_counter()
    with context.scope(deadline_s=0.3), pytest.raises(DeadlineExceeded):
        await call(smollm2, long)
    await smollm2.complete(Request.of("Hi", temperature=0, max_tokens=2))
    assert time.perf_counter() - started < 5.0


@pytest.mark.local
async def test_one_gguf_in_two_configs_loads_once(smollm2: LocalModel) -> None:
    path = smollm2.locate()
    config = Config.from_text(
        "models:\n"
        "  by-name: {provider: local, model: smollm2-135m}\n"
        f"  by-path: {{provider: local, model: '{path}', mode: chat}}\n"
    )
    a, b = config.get("by-name"), config.get("by-path")
    assert isinstance(a, LocalModel) and isinstance(b, LocalModel)
    assert a.load() is b.load() is smollm2.load()
    same_file = [m for m in _llama.loaded_models() if m.path.resolve() == path.resolve()]
    assert len(same_file) == 1


@pytest.mark.local
async def test_yaml_local_model_with_params_answers() -> None:
    config = Config.from_text(
        "models:\n"
        "  base:\n"
        "    provider: local\n"
        "    model: gemma3-270m\n"
        "    params: {temperature: 0, max_tokens: 16}\n"
    )
    model = config.get("base")
    assert isinstance(model, LocalModel)
    _usable(model)
    c = await model.complete(Request.of(FRANCE))
    assert "Paris" in c.text and c.usage.output_tokens <= 16


# -- errors (no model needed) ----------------------------------------------------------------


def test_unknown_builtin_name_is_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_text("models:\n  m: {provider: local, model: smollm9}\n").get("m")
    message = str(err.value)
    assert "\n" not in message and "smollm9" in message and "smollm2-135m" in message
    assert "line 2" in message or ":2:" in message


async def test_missing_path_fails_at_call_time_in_one_line() -> None:
    model = LocalModel("x", "/nonexistent/model.gguf")
    assert model.usable() == (False, "file not found: /nonexistent/model.gguf")
    with pytest.raises(ConfigError) as err:
        await model.complete(Request.of("hi"))
    assert str(err.value) == "file not found: /nonexistent/model.gguf"


def test_prompt_template_needs_completion_mode_and_a_prompt_field() -> None:
    with pytest.raises(ValueError, match="mode: completion"):
        LocalModel("x", "smollm2-135m", prompt_template="Q: {prompt}")
    with pytest.raises(ValueError, match=r"\{prompt\}"):
        LocalModel("x", "/m.gguf", mode="completion", prompt_template="Q:")


def test_local_models_are_free_and_know_their_context_window() -> None:
    config = Config.from_text(
        "models:\n"
        "  a: {provider: local, model: /m/a.gguf, n_ctx: 512}\n"
        "  b: {provider: local, model: /m/b.gguf, context_window: 256,"
        " price: {input: 1.0, output: 2.0}}\n"
    )
    a, b = config.get("a"), config.get("b")
    assert isinstance(a, LocalModel) and isinstance(b, LocalModel)
    assert (a.context_window, a.price.input, a.price_known) == (512, 0.0, True)
    assert (b.context_window, b.price.output, b.model_id) == (256, 2.0, "b")


def test_importing_chorus_does_not_import_llama_cpp() -> None:
    code = ("import sys, chorus, chorus.providers.local, chorus.config.builder; "
            "assert 'llama_cpp' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the plain helpers ---------------------------------------------------------------------


def test_render_template_fills_fields_once() -> None:
    assert _llama.render_template("Q: {prompt}\nA:", "2+2?", None) == "Q: 2+2?\nA:"
    assert _llama.render_template("{system}|{prompt}", "{system}", "S") == "S|{system}"
    assert _llama.render_template("{prompt} {json: 1}", "p", "sys") == "sys\n\np {json: 1}"


def test_held_back_keeps_what_could_start_a_stop() -> None:
    assert _llama.held_back("Hello wor", ["world"]) == 3
    assert _llama.held_back("Hello", ["\n"]) == 0
    assert _llama.held_back("abc<|im", ["<|im_end|>", "c<"]) == 4
    assert _llama.held_back("", ["x"]) == 0


def test_schema_of_accepts_bare_and_wrapped_schemas() -> None:
    bare = {"type": "object", "properties": {}}
    assert _llama._schema_of(bare) == bare
    assert _llama._schema_of({"type": "json_schema", "json_schema": {"schema": bare}}) == bare
    assert _llama._schema_of({"type": "json_object"}) is None
