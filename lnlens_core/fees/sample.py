"""``lnlens policy sample``: a starting policy file that the strict loader accepts (a test checks it)."""

from __future__ import annotations

__all__ = ["SAMPLE_POLICY"]

SAMPLE_POLICY = """\
# lnlens fee policy (charge-lnd format). Sections are tried in file order; the first
# one whose criteria all match and that names a strategy decides; [default] catches the rest.
# Check with: lnlens policy check FILE    Preview with: lnlens policy plan

[unmanaged-example]
# keep our hands off one peer entirely (also see `unmanaged` in the [policy] settings table)
node.id = 0000000000000000000000000000000000000000000000000000000000000000ff
strategy = ignore

[drained]
# little local balance left: charge more, in bins, with hysteresis at the bin edges
chan.max_ratio = 0.2
strategy = balance_based
fee_ppm = 300
bins = 5
hysteresis = 0.05

[big-peers]
# large, well-connected peers: follow the flow and the missed-opportunity signal
node.min_channels = 100
chan.min_capacity = 5000000
strategy = flow_based
min_fee_ppm = 50
max_fee_ppm = 1500

[default]
strategy = proportional
min_fee_ppm = 20
max_fee_ppm = 800
base_fee_msat = 0
min_fee_ppm_delta = 10
"""
