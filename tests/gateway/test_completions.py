"""The legacy Completions API (``POST /v1/completions``) through the gateway, driven by
the official openai SDK (``client.completions.create``): one prompt or several, streamed
or not, echo, logprobs, every sampling field reaching the model, through a system, and
each field chorus does not do refused by name."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from chorus.config.schema import GatewayConfig
from chorus.core.types import Completion, Request, TokenLogprob, Usage
from chorus.gateway import Gateway, create_app
from chorus.gateway.completions_api import COMPLETIONS_FIELDS
from chorus.patterns.fallback import Fallback
from chorus.providers.function import FunctionModel
from chorus.providers.scripted import ScriptedModel
from tests.gateway.conftest import serving


class Echoer:
    """Answers "<prompt> says hi" in three tokens with logprobs, and keeps each request."""

    def __init__(self) -> None:
        self.seen: list[Request] = []

    def __call__(self, request: Request) -> Completion:
        self.seen.append(request)
        words = [request.prompt.upper(), " says", " hi"]
        k = request.params.get("top_logprobs", None) or 0  # alternatives asked for
        lps = tuple(TokenLogprob(w, -0.5 * (i + 1), ((w, -0.5 * (i + 1)), ("x", -3.0))[:k])
                    for i, w in enumerate(words))
        return Completion("".join(words), "echoer", Usage(len(request.prompt), 3),
                          logprobs=lps if request.params.get("logprobs", None) else None)


@pytest.fixture
def echoer() -> Echoer:
    return Echoer()


@pytest.fixture
def url(echoer: Echoer) -> Iterator[str]:
    model = FunctionModel("echoer", echoer, thread=False)
    safe = Fallback("safe", [ScriptedModel("down", fail_with="server_error", fail_times=-1),
                             model], cooldown_s=0)
    gw = Gateway({"echoer": model, "safe": safe}, settings=GatewayConfig(timeout_s=5))
    with serving(create_app(gw)) as base:
        yield base


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def test_one_prompt_is_answered_as_a_text_completion(url: str, echoer: Echoer) -> None:
    r = sdk(url).completions.create(model="echoer", prompt="paris")
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.model == "echoer"
    (choice,) = r.choices
    assert choice.text == "PARIS says hi" and choice.index == 0
    assert choice.finish_reason == "stop" and choice.logprobs is None
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (5, 3)
    (req,) = echoer.seen
    assert [(m.role, m.content) for m in req.messages] == [("user", "paris")]
    assert req.params.given() == {}  # nothing the caller did not give


def test_a_list_of_prompts_gets_one_choice_each_in_order(url: str, echoer: Echoer) -> None:
    r = sdk(url).completions.create(model="echoer", prompt=["a", "bb", "ccc"])
    assert [(c.index, c.text) for c in r.choices] == [
        (0, "A says hi"), (1, "BB says hi"), (2, "CCC says hi")]
    assert r.usage is not None and r.usage.prompt_tokens == 6
    assert r.usage.completion_tokens == 9


def test_sampling_fields_reach_the_model(url: str, echoer: Echoer) -> None:
    sdk(url).completions.create(model="echoer", prompt="x", max_tokens=7, temperature=0.3,
                                top_p=0.9, stop=["\n", "."], seed=11, n=1, best_of=1,
                                user="u1", frequency_penalty=0, presence_penalty=0)
    p = echoer.seen[0].params
    assert p.given() == {"max_tokens": 7, "temperature": 0.3, "top_p": 0.9,
                         "stop": ("\n", "."), "seed": 11}


def test_echo_puts_the_prompt_before_the_answer(url: str) -> None:
    r = sdk(url).completions.create(model="echoer", prompt="rome", echo=True)
    assert r.choices[0].text == "romeROME says hi"
    s = sdk(url).completions.create(model="echoer", prompt="rome", echo=True, stream=True)
    assert "".join(c.choices[0].text for c in s if c.choices) == "romeROME says hi"


def test_logprobs_come_in_the_legacy_shape(url: str, echoer: Echoer) -> None:
    r = sdk(url).completions.create(model="echoer", prompt="oslo", logprobs=1)
    lp = r.choices[0].logprobs
    assert lp is not None
    assert lp.tokens == ["OSLO", " says", " hi"]
    assert lp.token_logprobs == [-0.5, -1.0, -1.5]
    assert lp.text_offset == [0, 4, 9]
    assert lp.top_logprobs == [{"OSLO": -0.5}, {" says": -1.0}, {" hi": -1.5}]
    p = echoer.seen[0].params
    assert p.get("logprobs", None) is True and p.get("top_logprobs", None) == 1


def test_a_stream_gives_the_text_piece_by_piece_then_usage(url: str) -> None:
    chunks = list(sdk(url).completions.create(
        model="safe", prompt="lima", stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "LIMA says hi"
    assert all(c.object == "text_completion" for c in chunks)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_a_stream_of_several_prompts_names_each_choice(url: str) -> None:
    chunks = list(sdk(url).completions.create(model="echoer", prompt=["a", "b"], stream=True))
    by_index: dict[int, str] = {}
    for c in chunks:
        for ch in c.choices:
            by_index[ch.index] = by_index.get(ch.index, "") + ch.text
    assert by_index == {0: "A says hi", 1: "B says hi"}


def test_a_system_answers_and_says_which_model_did(url: str) -> None:
    raw = sdk(url).completions.with_raw_response.create(model="safe", prompt="kyiv")
    assert raw.parse().choices[0].text == "KYIV says hi"
    assert raw.headers["x-chorus-system"] == "safe"
    assert raw.headers["x-chorus-model"] == "echoer"


@pytest.mark.parametrize(("extra", "param"), [
    ({"suffix": "end"}, "suffix"),
    ({"best_of": 3}, "best_of"),
    ({"n": 2}, "n"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"presence_penalty": 1}, "presence_penalty"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"echo": True, "logprobs": 1}, "echo"),
    ({"logprobs": 6}, "logprobs"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_fields_chorus_does_not_do_are_refused_by_name(
        url: str, echoer: Echoer, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        sdk(url).completions.create(model="echoer", prompt="x", extra_body=extra)
    assert param in str(err.value) and err.value.status_code == 400
    assert echoer.seen == []


@pytest.mark.parametrize("prompt", [[1, 2, 3], [[1, 2], [3]], []])
def test_token_id_prompts_and_no_prompt_are_refused(url: str, prompt: object) -> None:
    r = httpx.post(f"{url}/v1/completions", json={"model": "echoer", "prompt": prompt})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"


def test_unknown_fields_and_models_are_refused(url: str) -> None:
    r = httpx.post(f"{url}/v1/completions",
                   json={"model": "echoer", "prompt": "x", "max_token": 5})
    assert r.status_code == 400 and "max_token" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/completions", json={"model": "nope", "prompt": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_every_field_of_the_table_is_in_the_openapi_document(url: str) -> None:
    doc = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/completions" in doc["paths"]
    props = doc["components"]["schemas"]["CompletionsRequest"]["properties"]
    assert set(props) == set(COMPLETIONS_FIELDS)


def test_every_field_of_the_table_is_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("The legacy Completions API"):]
    for name, what in COMPLETIONS_FIELDS.items():
        assert f"| `{name}` | {what} |" in section, name
