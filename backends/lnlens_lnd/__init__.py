"""lnlens beside lnd: a gRPC backend, the HTLC event stream and the ``lnlens lnd`` commands.

Importing this package needs nothing beyond lnlens's core; the modules that talk to
lnd need the ``lnd`` extra (``pip install 'lnlens[lnd]'``) and say so when it is missing.
"""
