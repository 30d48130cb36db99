"""Reading YAML that arrives from outside: the safe loader, without aliases.

An alias repeats a node by reference, so a few hundred bytes of nested aliases (a "billion
laughs" document) expand into billions of nodes when the document is walked. No Tollgate
document needs them, so a document with an alias (or a merge key, which needs one) is
refused with the line it is on.
"""

from __future__ import annotations

from typing import Any

import yaml


class _NoAliases(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted here", event.start_mark
            )
        return super().compose_node(parent, index)


def load(text: str) -> Any:
    """Parse one YAML (or JSON) document; ``yaml.YAMLError`` when it is invalid or uses an
    alias."""
    return yaml.load(text, Loader=_NoAliases)
