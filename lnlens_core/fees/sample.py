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
# lnlens's default: changes a channel only when its current fee earned nothing for 6 h, where a change
# has nothing to lose: idle outbound liquidity (>= 30 % local, no forward) gets cheaper, a channel
# forwarding for free (0 msat) gets +50 ppm, a drained channel stops undercutting its dearer sibling
# to the same peer. A channel that earns is never touched; the [policy] rails bound every step.
# On 128 held-out simulator seeds per node (docs/FEES.md, "Decision quality") it earned more than
# doing nothing on each of 3 nodes, and more than the best rule pooled and on 2 of them (not on the
# smallest). balance_based, flow_based and proportional are not in this sample: none was shown to earn
# more than doing nothing.
strategy = zero_revenue
cut = 0.5
min_ratio = 0.3
idle_s = 21600
free_forwards = 3
free_step_ppm = 50
"""
