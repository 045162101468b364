"""The simulator answers the fee engine's node.* lookups from its graph."""

from lnlens_sim.scenario import SimSettings, build


def test_peer_node_stats_match_the_graph():
    node = build(SimSettings(network="synthetic", nodes=120, seed=4))
    graph = node.network.graph
    degree = graph.degree(enabled_only=True)
    for channel in node.list_channels():
        peer = graph.pubkeys.index(channel.peer_id)
        channels, capacity_msat = node.peer_node_stats(channel.peer_id)
        assert channels == degree[peer] > 0
        mine = ((graph.node1 == peer) | (graph.node2 == peer)) & graph.enabled.reshape(-1, 2).any(axis=1)
        assert capacity_msat == int(graph.capacity_sat[mine].sum()) * 1000
    assert node.peer_node_stats("03" + "ff" * 32) is None
