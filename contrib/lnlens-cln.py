#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["lnlens[cln]"]
# ///
"""lnlens for Core Lightning, as a single-file plugin in the lightningd/plugins style.

Point lightningd at this file (``plugin=/path/to/lnlens-cln.py``); uv builds an isolated
environment with lnlens and pyln-client on first start. Options and methods are those of
the ``lnlens-cln`` console script (see README.md, "Core Lightning").
"""

from lnlens_cln.plugin import main

if __name__ == "__main__":
    main()
