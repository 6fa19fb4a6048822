from __future__ import annotations

import smg


def test_the_package_exports_a_small_pinned_surface() -> None:
    assert smg.__all__ == ["Settings", "__version__", "build_context", "create_app", "parse_settings"]


def test_every_exported_name_resolves() -> None:
    for name in smg.__all__:
        assert getattr(smg, name) is not None
    assert smg.parse_settings([], env={}).server.port == 30000
