"""Reads config.yaml once into typed, frozen settings; each problem names its key path, never a secret.

`config.types` holds the value types, `config.source` the reading of the file, `config.sections` the
sections and `load_config`. This package itself imports none of them until a name is asked for, so that an
integration's section (`chatops_bot/integrations/<system>/settings.py`, built from `config.types`) can be
imported first without a cycle through `Settings`, which includes it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatops_bot.config.sections import *  # noqa: F403
    from chatops_bot.config.sections import ConfigError, ReviewMode, Settings, load_config

__all__ = ["ConfigError", "ReviewMode", "Settings", "load_config"]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("chatops_bot.config.sections"), name)
