"""`refuse_duplicate_keys` finds exactly the JSON texts in which some object names a key twice, however
the key is spelled (escapes), however deep, and names that key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smg.errors import InvalidJson
from smg.protocol import DuplicateJsonKey, parse_json_body, refuse_duplicate_keys

# A JSON value as a tree whose objects are lists of (key, value) pairs, so duplicates can be written.
_keys = st.sampled_from(["a", "b", "model", "é", "\u2028", "", '"', "\\", "a:b"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_trees = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda v: ("list", v))
        | st.lists(st.tuples(_keys, inner), max_size=4).map(lambda v: ("object", v))
    ),
    max_leaves=30,
)


def _write(tree: Any, escape: bool) -> str:
    if isinstance(tree, tuple) and tree[0] == "list":
        return "[" + ",".join(_write(v, escape) for v in tree[1]) + "]"
    if isinstance(tree, tuple) and tree[0] == "object":
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=escape)}: {_write(v, escape)}" for k, v in tree[1])
            + "}"
        )
    return json.dumps(tree, ensure_ascii=escape)


def _duplicates(tree: Any) -> set[str]:
    """Every key that some object of ``tree`` names twice."""
    found: set[str] = set()
    if isinstance(tree, tuple):
        items = tree[1] if tree[0] == "list" else [v for _, v in tree[1]]
        for item in items:
            found |= _duplicates(item)
        if tree[0] == "object":
            keys = [k for k, _ in tree[1]]
            found |= {k for k in keys if keys.count(k) > 1}
    return found


@settings(max_examples=300, deadline=None)
@given(tree=_trees, escape=st.booleans())
def test_a_text_is_refused_exactly_when_some_object_repeats_a_key(tree: Any, escape: bool) -> None:
    raw = _write(tree, escape).encode()
    duplicates = _duplicates(tree)
    if duplicates:
        with pytest.raises(DuplicateJsonKey) as refused:
            parse_json_body(raw)
        assert refused.value.param in duplicates
        assert refused.value.status == 400
    else:
        assert parse_json_body(raw) == json.loads(raw)


def test_a_key_spelled_once_plain_and_once_escaped_is_a_duplicate() -> None:
    with pytest.raises(DuplicateJsonKey) as refused:
        refuse_duplicate_keys(b'{"x":{"\\u00e9":1,"\xc3\xa9":2}}')
    assert refused.value.param == "é"


def test_text_that_is_not_json_is_left_to_its_parser() -> None:
    refuse_duplicate_keys(b'{"a":1,')
    refuse_duplicate_keys(b"\xff")
    with pytest.raises(InvalidJson):
        parse_json_body(b'{"a":1,')


def test_json_nested_too_deeply_to_check_is_invalid() -> None:
    with pytest.raises(InvalidJson):
        refuse_duplicate_keys(b"[" * 1020 + b"]" * 1020)
