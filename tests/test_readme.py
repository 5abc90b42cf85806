"""The README's commands and examples stay true."""

import re
from pathlib import Path

from chorus import Config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


def test_first_block_is_setup_then_tests() -> None:
    first = _blocks("bash")[0].splitlines()
    assert first[0].startswith("bash scripts/setup.sh && .venv/bin/chorus run")
    assert first[1].startswith("bash scripts/test.sh")
    for script in ("scripts/setup.sh", "scripts/test.sh"):
        assert (Path(__file__).resolve().parent.parent / script).is_file()


def test_yaml_example_builds() -> None:
    cfg = Config.from_text(_blocks("yaml")[0], "README.md")
    assert sorted(cfg.check()) == ["default", "gpt", "small"]
