"""``--param key=value`` options shared by the data verbs."""
from __future__ import annotations

from ..errors import ConfigError


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["key=value", ...]`` -> dict; values stay strings (each generator or loader coerces its own types)."""
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param must look like key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params
