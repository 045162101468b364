"""lnlens_core.memory: what the daemons ask glibc's allocator (counted, not measured: never RSS in a test)."""

from __future__ import annotations

import lnlens_core.memory as memory


def test_one_heap_for_every_thread_is_asked_of_glibc_and_the_cln_plugin_asks_first(monkeypatch):
    """The CLN plugin limits glibc to one heap (``mallopt(M_ARENA_MAX, 1)``) before it builds anything, so its
    threads' freed memory serves each other (issue 16); off glibc nothing is asked and nothing fails."""
    import lnlens_cln.plugin as plugin

    asked: list[tuple] = []
    monkeypatch.setattr(memory, "_glibc", lambda name: (lambda *args: asked.append((name, *args)) or 1))
    assert memory.share_one_heap() and asked == [("mallopt", -8, 1)]
    monkeypatch.setattr(memory, "_glibc", lambda name: None)
    assert not memory.share_one_heap() and not memory.release_free_memory()

    order: list[str] = []

    class Plugin:
        def run(self) -> None:
            order.append("run")

    monkeypatch.setattr(plugin, "share_one_heap", lambda: order.append("one heap"))
    monkeypatch.setattr(plugin, "build_plugin", lambda: order.append("build") or Plugin())
    plugin.main()
    assert order == ["one heap", "build", "run"]
