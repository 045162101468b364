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

[default]
# lnlens's default: cheaper only where outbound liquidity sits idle (the current fee earned nothing
# for 12 h on a channel holding >= 30 % local); it never raises a fee and never touches a channel
# that earns. The only strategy measured above doing nothing, on the largest node (docs/FEES.md,
# "Decision quality"); not shown to beat the best rule, and within noise on the smaller nodes.
# balance_based, flow_based and proportional are not in this sample: none was shown to earn
# more than doing nothing.
strategy = idle_discount
cut = 0.5
min_ratio = 0.3
idle_s = 43200
"""
