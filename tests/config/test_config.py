from pathlib import Path

import pytest

from chorus import Config, Request, run_sync
from chorus.config.loader import interpolate, load_text
from chorus.core.errors import ConfigError, UnknownName

GOOD = """\
models:
  a:
    provider: scripted
    replies: [alpha]
    price: {input: 1.0, output: 2.0}
  b:
    provider: scripted
    default: beta
systems:
  s: {model: a}
  t: b
  u: t
"""


def test_builds_models_and_systems_by_name() -> None:
    cfg = Config.from_text(GOOD, "good.yaml")
    assert cfg.model_names == ["a", "b"] and cfg.system_names == ["s", "t", "u"]
    assert cfg.get("s") is cfg.get("a")
    assert cfg.get("u") is cfg.get("b")
    assert cfg.default_system == "s"
    assert run_sync(cfg.get().complete(Request.of("q"))).text == "alpha"
    assert sorted(cfg.check()) == ["a", "b", "s", "t", "u"]


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Config.from_text(text, "f.yaml").check()
    return info.value


def test_unknown_key_names_file_line_and_key_with_suggestion() -> None:
    err = _error("models:\n  a:\n    provider: scripted\n    default: x\n    latncy_s: 1\n")
    assert (err.file, err.line, err.key) == ("f.yaml", 5, "models.a.latncy_s")
    assert "did you mean 'latency_s'" in str(err)
    assert "\n" not in str(err)


def test_unknown_top_level_key() -> None:
    err = _error("modles: {}\n")
    assert err.line == 1 and "did you mean 'models'" in str(err)


def test_unknown_provider_lists_known_ones() -> None:
    err = _error("models:\n  a:\n    provider: scriptd\n")
    assert err.key == "models.a.provider" and "did you mean 'scripted'" in str(err)
    assert "known:" in str(err)


def test_yaml_syntax_error_has_line() -> None:
    err = _error("models:\n  a: [unclosed\n")
    assert err.file == "f.yaml" and err.line is not None and "invalid YAML" in str(err)


def test_duplicate_key_rejected() -> None:
    err = _error("models:\n  a: {provider: scripted, default: x}\n  a: {provider: scripted}\n")
    assert "appears twice" in str(err) and err.line == 3


def test_wrong_type_reports_value() -> None:
    err = _error("models:\n  a: {provider: scripted, default: x, latency_s: soon}\n")
    assert err.key == "models.a.latency_s" and "soon" in str(err)


def test_unknown_reference_suggests() -> None:
    with pytest.raises(UnknownName, match="did you mean 'alpha'"):
        Config.from_text("models:\n  alpha: {provider: scripted, default: x}\n"
                         "systems:\n  s: alpa\n", "f.yaml").get("s")


def test_reference_cycle_detected() -> None:
    err = _error("systems:\n  a: b\n  b: a\n")
    assert "cycle" in str(err) and "a -> b -> a" in str(err)


def test_unknown_system_at_get() -> None:
    cfg = Config.from_text(GOOD)
    with pytest.raises(UnknownName, match="nope"):
        cfg.get("nope")


def test_env_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_TEST_REPLY", "from-env")
    cfg = Config.from_text("models:\n  a: {provider: scripted, default: '${CHORUS_TEST_REPLY}'}\n")
    assert run_sync(cfg.get("a").complete(Request.of("q"))).text == "from-env"
    assert interpolate("x ${NOPE:-fallback} $${LIT}", {}) == "x fallback ${LIT}"


def test_missing_env_var_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CHORUS_NOT_SET_ANYWHERE is not set") as info:
        load_text("models:\n  a:\n    api_key: ${CHORUS_NOT_SET_ANYWHERE}\n", "e.yaml", env={})
    assert info.value.line == 3


def test_missing_env_var_error_names_the_escape() -> None:
    text = "models:\n  a: {provider: scripted, default: 'costs ${PRICE} today'}\n"
    with pytest.raises(ConfigError) as info:
        load_text(text, "e.yaml", env={})
    assert "or $${PRICE} for a literal ${PRICE}" in str(info.value)
    fixed = load_text(text.replace("${", "$${"), "e.yaml", env={})
    assert fixed.data["models"]["a"]["default"] == "costs ${PRICE} today"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        Config.load(Path("/nonexistent/chorus.yaml"))


def test_bad_params_in_model() -> None:
    err = _error("models:\n  a: {provider: scripted, default: x, params: {temprature: 0}}\n")
    assert "temprature" in str(err) and err.key == "models.a"


def test_default_config_builds() -> None:
    cfg = Config.default()
    assert "single" in cfg.system_names
    cfg.check()
