"""Where a key sits in a YAML document, for error messages about configuration files."""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def key_line(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the last step of ``path`` in the YAML ``text`` (a mapping key by its name, a
    list item by its index), or None when the text does not parse or the path is not in it."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step]
            if not found:
                return None
            key, node = found[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return None
    return line


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; ``line`` (1-based) where the parser stopped, when it says. The parser's
    own message is not kept: its excerpt of the text may hold a secret."""

    def __init__(self, line: int | None) -> None:
        super().__init__("not valid YAML")
        self.line = line


def load_yaml(text: str) -> object:
    """``yaml.safe_load(text)``. Raises YamlSyntaxError."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlSyntaxError(mark.line + 1 if mark is not None else None) from None
