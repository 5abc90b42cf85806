"""``chorus status``: breaker state and budget spending read back from a shared store."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from chorus.cli.main import main
from chorus.config.builder import Config
from chorus.core.errors import ServerError
from chorus.core.types import Request

CONFIG = """\
stores:
  state: {{kind: sqlite, path: "{db}"}}
models:
  flaky: {{provider: scripted, fail_with: server_error, fail_times: -1}}
  ok:
    provider: scripted
    default: fine
    usage: {{input_tokens: 10, output_tokens: 5}}
    price: {{input: 1000, output: 2000}}
systems:
  guarded: {{kind: breaker, inner: flaky, failures: 2, window_s: 60, cooldown_s: 30,
            store: state}}
  capped:
    kind: budget
    inner: ok
    request: {{usd: 0.5}}
    window: {{per: key, seconds: 3600, usd: 1, tokens: 1000}}
    store: state
  paced: {{kind: ratelimit, inner: ok, requests_per_minute: 60, store: state}}
"""


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "status.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "state.db"))
    return path


def use(path: Path) -> None:
    """Trip the breaker and spend from the budget, as a server process would."""
    async def go() -> None:
        cfg = Config.load(path)
        for _ in range(2):
            with pytest.raises(ServerError):
                await cfg.get("guarded").complete(Request.of("q"))
        capped = cfg.get("capped")
        for who in ("alice", "alice", "bob"):
            req = Request.of("hello there", max_tokens=10)
            await capped.complete(Request(req.messages, req.params, {"key": who}))
        await cfg.get("paced").complete(Request.of("q"))
        await cfg.builder.store("state").aclose()

    asyncio.run(go())


def test_status_lines(cfg_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "-c", str(cfg_file)]) == 0
    fresh = capsys.readouterr().out.splitlines()
    assert fresh[0] == "breaker   guarded: model flaky, closed, 0/2 failures in 60s"
    assert fresh[1] == ("budget    capped: per request $0.5; window 3600s per key: "
                        "limit $1 / 1,000 tokens, 0 active")

    use(cfg_file)
    assert main(["status", "-c", str(cfg_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"breaker   guarded: model flaky, open, 2/2 failures in 60s, "
                        r"probe in (29\.\d|30\.0)s", lines[0])
    assert lines[1].endswith("limit $1 / 1,000 tokens, 2 active")
    assert lines[2] == "  key 'alice': $0.04 of $1, 30 of 1,000 tokens"
    assert lines[3] == "  key 'bob': $0.02 of $1, 15 of 1,000 tokens"
    assert lines[4] == ("ratelimit paced: model ok, 60 requests/min per model, on limit queue, "
                        "1 active bucket(s)")


def test_status_json(cfg_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    use(cfg_file)
    assert main(["status", "-c", str(cfg_file), "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["guarded"]["state"] == "open" and infos["guarded"]["failures"] == 2
    assert infos["capped"]["spent"]["alice"] == {"usd": pytest.approx(0.04), "tokens": 30}
    assert infos["capped"]["store"] == "sqlite"


def test_status_without_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("models: {m: {provider: scripted, default: ok}}\n")
    assert main(["status", "-c", str(path)]) == 0
    assert "no budget, breaker or rate-limit wrappers" in capsys.readouterr().out


def test_status_with_unreachable_redis(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import free_port

    path = tmp_path / "redis.yaml"
    path.write_text(f"""
models: {{m: {{provider: scripted, default: ok}}}}
systems:
  b: {{kind: breaker, inner: m, store: {{kind: redis, url: "redis://127.0.0.1:{free_port()}/0"}}}}
""")
    assert main(["status", "-c", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("chorus: error: ") and "cannot reach Redis" in err
    assert len(err.splitlines()) == 1
