from smg.keys.scope import UNRESTRICTED, KeyScope, attach, scope_of


def test_an_unrestricted_scope_allows_everything() -> None:
    assert UNRESTRICTED.allows_server("a") and UNRESTRICTED.allows_tool("a", "t")
    assert UNRESTRICTED.allows_model("m") and not UNRESTRICTED.restricted


def test_a_server_scope_allows_that_server_only() -> None:
    s = KeyScope(name="k", servers=frozenset({"a"}))
    assert s.allows_tool("a", "t") and not s.allows_server("b") and not s.allows_tool("b", "t")
    assert s.allows_model("any") and s.restricted


def test_a_tool_scope_allows_its_server_and_only_that_tool() -> None:
    s = KeyScope(name="k", tools=frozenset({"a__t"}))
    assert s.allows_server("a") and s.allows_tool("a", "t")
    assert not s.allows_tool("a", "u") and not s.allows_server("b")


def test_servers_and_tools_must_both_allow() -> None:
    s = KeyScope(name="k", servers=frozenset({"b"}), tools=frozenset({"a__t"}))
    assert not s.allows_tool("a", "t") and not s.allows_server("b")


def test_a_model_scope() -> None:
    s = KeyScope(name="k", models=frozenset({"m"}))
    assert s.allows_model("m") and not s.allows_model("n") and s.allows_tool("a", "t")


def test_the_scope_travels_on_the_asgi_scope() -> None:
    asgi: dict[str, object] = {}
    assert scope_of(asgi) is UNRESTRICTED
    s = KeyScope(name="k")
    attach(asgi, s)
    assert scope_of(asgi) is s
