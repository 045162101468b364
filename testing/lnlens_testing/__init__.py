"""Test doubles for lnlens's node adapters: stand-ins for lightningd and lnd, backed by the simulator.

Nothing here talks to a real node. Each double plays a node's side of the wire protocol the
adapter speaks and answers from a :class:`~lnlens_sim.node.SimNode`, so the adapters' tests,
the benchmarks and the README's examples run the real adapter code against simulated traffic:

- :mod:`lnlens_testing.cln`: a lightningd stand-in. It runs the real ``lnlens-cln`` plugin over
  stdio (lightningd's plugin protocol) and answers its JSON-RPC on a unix socket;
  ``python -m lnlens_testing.cln.examples`` writes the README's and ``docs/cln-examples``' output.
- :mod:`lnlens_testing.lnd`: a fake lnd. It serves lnlens's proto subset over gRPC with TLS and
  (fake) macaroons; ``python -m lnlens_testing.lnd.example`` writes the README's LND example.

The doubles need the simulator (``lnlens_sim``) and both adapters (``lnlens_cln``, ``lnlens_lnd``),
which the adapters themselves never import. ``pip install 'lnlens[testing]'`` installs what they
need beyond the core: the ``cln`` and ``lnd`` extras, ``cryptography`` for the fake lnd's TLS
certificate and ``jsonschema`` for checking replies against the method schemas (``dev`` includes it).
"""

from __future__ import annotations

__all__: list[str] = []
