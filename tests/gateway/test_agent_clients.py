"""Real clients running agent loops through `chorus serve`: the openai SDK with a
function tool against the bundled SmolLM2 and against llama.cpp's own OpenAI-compatible
server, and the OpenAI Agents SDK (Responses and Chat Completions models)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import LlamaServer
from tests.gateway._procs import chorus_serve

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def weather(city: str) -> str:
    return f"sunny and 24C in {city}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, llama_server: LlamaServer
           ) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("agents")
    config = tmp / "chorus.yaml"
    config.write_text(f"""\
models:
  smollm2:
    provider: local
    model: smollm2-135m
    params: {{temperature: 0, max_tokens: 60, seed: 0}}
  llama_server:
    provider: openai
    base_url: {llama_server.base_url}
    model: {llama_server.model}
    api_key: none
    params: {{temperature: 0, max_tokens: 60}}
""")
    with chorus_serve(config, tmp / "serve.log") as url:
        yield url


def agent_loop(client: openai.OpenAI, model: str) -> tuple[list[str], str]:
    """Ask, run the tool the model calls, give the result back, return the final text."""
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "What is the weather in Paris?"}]
    cities: list[str] = []
    choice: object = {"type": "function", "function": {"name": "get_weather"}}
    for _ in range(3):
        r = client.chat.completions.create(model=model, messages=messages,  # type: ignore[arg-type]
                                           tools=[TOOL], tool_choice=choice)  # type: ignore[arg-type, list-item]
        msg = r.choices[0].message
        if not msg.tool_calls:
            return cities, msg.content or ""
        messages.append(msg.model_dump(exclude_none=True))
        for call in msg.tool_calls:
            assert call.function.name == "get_weather"
            city = json.loads(call.function.arguments)["city"]
            cities.append(city)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": weather(city)})
        choice = "none"  # the result is in: answer in words
    raise AssertionError("the loop did not end")


@pytest.mark.local
@pytest.mark.server
@pytest.mark.parametrize("model", ["smollm2", "llama_server"])
def test_openai_sdk_agent_loop_with_a_function_tool(served: str, model: str) -> None:
    with openai.OpenAI(base_url=f"{served}/v1", api_key="none", max_retries=0,
                       timeout=120) as client:
        cities, answer = agent_loop(client, model)
    assert len(cities) == 1 and isinstance(cities[0], str) and cities[0]
    assert answer.strip()


@pytest.mark.local
@pytest.mark.server
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_openai_agents_sdk_runs_an_agent_with_one_tool(served: str, api: str,
                                                            streamed: bool) -> None:
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)
    called: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        called.append(city)
        return weather(city)

    client = openai.AsyncOpenAI(base_url=f"{served}/v1", api_key="none", max_retries=0,
                                timeout=120)
    model = (agents.OpenAIResponsesModel("smollm2", client) if api == "responses"
             else agents.OpenAIChatCompletionsModel("smollm2", client))
    agent = agents.Agent(name="weather", instructions="Answer questions about the weather.",
                         tools=[get_weather], model=model,
                         model_settings=agents.ModelSettings(tool_choice="get_weather"))
    kinds: list[str] = []
    try:
        if streamed:
            # Runner.run_streamed: /v1/responses (or chat) with stream=true, the tool call
            # and the answer's text arriving as events.
            result = agents.Runner.run_streamed(agent, "What is the weather in Paris?",
                                                max_turns=4)
            text_deltas: list[str] = []
            async for ev in result.stream_events():
                if ev.type == "raw_response_event":
                    kinds.append(ev.data.type)
                    if ev.data.type == "response.output_text.delta":
                        text_deltas.append(ev.data.delta)
                elif ev.type == "run_item_stream_event":
                    kinds.append(ev.name)
            assert "tool_called" in kinds and "tool_output" in kinds
            # The call's arguments and the answer arrive in pieces, not at once.
            assert kinds.count("response.function_call_arguments.delta") > 1
            assert len(text_deltas) > 1
            assert "".join(text_deltas).strip() == str(result.final_output).strip()
            assert result.is_complete
        else:
            result = await agents.Runner.run(agent, "What is the weather in Paris?",
                                             max_turns=4)
    finally:
        await client.close()
    assert len(called) == 1 and called[0]
    assert isinstance(result.final_output, str) and result.final_output.strip()
