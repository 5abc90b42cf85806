import importlib

import pytest

import chorus


@pytest.mark.parametrize("module", ["chorus", "chorus.core", "chorus.config", "chorus.providers",
                                    "chorus.core.errors", "chorus.embeddings",
                                    "chorus.patterns", "chorus.core.compose",
                                    "chorus.core.structured", "chorus.http", "chorus.stores",
                                    "chorus.eval", "chorus.patterns.agreement",
                                    "chorus.batch"])
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert missing == []


def test_error_tree_roots_at_chorus_error() -> None:
    from chorus.core import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ChorusError), name


def test_py_typed_ships() -> None:
    from importlib import resources

    assert resources.files("chorus").joinpath("py.typed").is_file()


def test_version() -> None:
    assert chorus.__version__
