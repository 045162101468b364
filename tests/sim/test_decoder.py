"""The gossip-map decoder against the counts in the shipped data's README."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from lnlens_sim.graph import MAINNET_FILES, decode_gossmap, load_mainnet, read_node_map
from lnlens_sim.topology import largest_scc


@pytest.fixture(scope="module")
def mainnet():
    return load_mainnet()


def test_counts_match_the_readme(mainnet):
    g = mainnet
    assert g.n_nodes == 17_324 and g.n_channels == 50_808
    assert int(g.enabled.sum()) == 65_810 and int((~g.enabled).sum()) == 35_806
    per_channel = g.enabled.reshape(-1, 2).sum(axis=1)
    assert [int((per_channel == k).sum()) for k in (2, 1, 0)] == [31_917, 1_976, 16_915]
    assert int((g.degree() > 0).sum()) == 6_978
    assert len(largest_scc(g)) == 6_270
    assert not (g.node1 == g.node2).any()
    pairs = np.minimum(g.node1, g.node2).astype(np.int64) * g.n_nodes + np.maximum(g.node1, g.node2)
    _, counts = np.unique(pairs, return_counts=True)
    assert int((counts > 1).sum()) == 1_820
    assert all(len(pk) == 66 for pk in g.pubkeys) and len(g.aliases) == g.n_nodes
    # Every line has an alias field; 1,039 of them are empty (the README's "all with an alias" counts the field).
    assert sum(1 for a in g.aliases if not a) == 1_039


def test_amounts_and_policies_match_the_readme(mainnet):
    g = mainnet
    assert round(int(g.capacity_sat.sum()) / 1e8, 1) == 5_361.7
    usable = g.enabled.reshape(-1, 2).any(axis=1)
    assert round(int(g.capacity_sat[usable].sum()) / 1e8, 1) == 5_144.0
    assert np.median(g.capacity_sat) == 1_283_178 and g.capacity_sat.max() == 1_000_000_000
    ppm = g.fee_ppm[g.enabled]
    assert np.percentile(ppm, [25, 50, 75, 90, 99]).tolist() == [1, 100, 569, 2000, 10000]
    assert round(float(ppm.mean())) == 915
    assert int((ppm == 1).sum()) == 14_613 and int((ppm == 0).sum()) == 4_516
    base = g.base_fee_msat[g.enabled]
    assert round(float((base == 0).mean()) * 100, 1) == 45.3 and round(float((base == 1000).mean()) * 100, 1) == 40.8
    cltv = g.cltv_delta[g.enabled]
    assert np.percentile(cltv, [10, 50, 90]).tolist() == [40, 80, 144]
    code = np.asarray(g.meta["htlc_max_code"])[g.enabled]
    assert int((code == 1).sum()) == 42_056 and int((code == 0).sum()) == 4_780
    assert (g.base_fee_msat[~g.enabled] == 0).all() and (g.fee_ppm[~g.enabled] == 0).all()


def test_bad_streams_are_rejected(tmp_path):
    from importlib import resources

    data = resources.files("lnlens_sim") / "data"
    raw = gzip.decompress((data / MAINNET_FILES[0]).read_bytes())
    pubkeys, aliases = read_node_map(data / MAINNET_FILES[1])
    with pytest.raises(ValueError, match="header"):
        decode_gossmap(b"GOSSMAP_COMPRESSv2\x00" + raw[19:], pubkeys, aliases)
    with pytest.raises(ValueError, match="trailing"):
        decode_gossmap(raw + b"\x00", pubkeys, aliases)
    with pytest.raises((ValueError, IndexError)):
        decode_gossmap(raw[:-10], pubkeys, aliases)
    with pytest.raises(ValueError, match="node map"):
        decode_gossmap(raw, pubkeys[:100], aliases[:100])


def test_node_map_keeps_colons_in_aliases(tmp_path):
    import lzma

    path = tmp_path / "map.xz"
    path.write_bytes(lzma.compress(b"0:02" + b"ab" * 32 + b":a:b:c\n1:03" + b"cd" * 32 + b":plain\n"))
    pubkeys, aliases = read_node_map(path)
    assert aliases == ["a:b:c", "plain"] and pubkeys[1].startswith("03cd")


def test_find_node_by_index_pubkey_alias(mainnet):
    g = mainnet
    assert g.find_node(316) == g.find_node("c-otto.de") == g.find_node(g.pubkeys[316]) == 316
    with pytest.raises(KeyError):
        g.find_node("no such alias anywhere")
