"""User-visible strings of the pages: one JSON file per language under `strings/`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

DEFAULT_LANGUAGE = "en"


@cache
def strings(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """Every string of the pages in `language`, by key."""
    text = (
        resources.files("miva_connect.web")
        .joinpath("strings", f"{language}.json")
        .read_text(encoding="utf-8")
    )
    loaded: dict[str, str] = json.loads(text)
    return loaded
