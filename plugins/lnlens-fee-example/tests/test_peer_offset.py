from lnlens_fee_example import PeerOffset

from lnlens_core.backend import Capability
from lnlens_core.domain import ChannelPolicy, NodeInfo
from lnlens_core.fees.strategy import FeeContext
from lnlens_core.testing import make_channel

NODE = NodeInfo("02" + "11" * 32, "me", "regtest", 800_000, "test", "fake")


def test_peer_offset_follows_the_peer():
    ctx = FeeContext(now=0.0, node=NODE, capabilities=frozenset(Capability), peer_policy=ChannelPolicy(0, 300))
    proposal = PeerOffset(offset_ppm=-400).propose(make_channel(), ctx)
    assert proposal is not None and proposal.update.fee_ppm == 0
    assert PeerOffset(offset_ppm=25).propose(make_channel(), ctx).update.fee_ppm == 325
