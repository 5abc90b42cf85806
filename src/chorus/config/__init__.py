"""The YAML format: load a file, validate it, build its Model tree."""

from chorus.config.builder import Builder, Config
from chorus.config.loader import load_file, load_text
from chorus.config.schema import ModelRef, Node, PatternConfig, ProviderConfig

__all__ = [
    "Builder",
    "Config",
    "ModelRef",
    "Node",
    "PatternConfig",
    "ProviderConfig",
    "load_file",
    "load_text",
]
