"""lnlens inside Core Lightning: the ``lnlens-cln`` plugin and the ClnBackend it talks through.

``lnlens_cln.plugin.build_plugin()`` makes the pyln-client plugin; ``lnlens_cln.backend.ClnBackend``
implements :class:`~lnlens_core.backend.NodeBackend` over lightningd's JSON-RPC socket, refusing
every method outside a read-only allowlist plus ``setchannel``. The lightningd stand-in the tests
run it under is :mod:`lnlens_testing.cln`, outside this package.
"""

from __future__ import annotations

__all__: list[str] = []
