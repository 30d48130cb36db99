"""Lua scripts that both sides register with Redis."""

from __future__ import annotations

from importlib.resources import files
from typing import Final


def _load(name: str) -> str:
    return files("shared").joinpath("lua", name).read_text(encoding="utf-8")


#: Versioned compare-and-set; see ``lua/cas_set.lua``.
CAS_SET: Final = _load("cas_set.lua")
#: The same for many records in one call (a rebuild); see ``lua/cas_many.lua``.
CAS_MANY: Final = _load("cas_many.lua")
