"""SimNetwork: balances, policies, gossip and HTLC propagation over a :class:`Graph`.

One node is *ours*: only its policies change during a run (other nodes' fees are
static), and only what happens at its hop is reported as forward events. Every
payment is atomic and instantaneous in simulated time: an attempt walks its route
hop by hop, fails at the first hop that refuses it, and otherwise settles, moving
each hop's amount from the sending to the receiving side of its channel. Amounts
are integer msat throughout, so fees are credited exactly.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from lnlens_core.domain import ChannelPolicy, FailureReason

from .graph import Graph
from .routing import Router, RoutingView

__all__ = ["SimNetwork", "Attempt", "Hop", "FAILCODES", "BALANCE_RULES"]

# BOLT 4 failure codes (UPDATE = 0x1000): what the failing hop returns.
FAILCODES: dict[FailureReason, tuple[int, str]] = {
    FailureReason.INSUFFICIENT_BALANCE: (0x1007, "WIRE_TEMPORARY_CHANNEL_FAILURE"),
    FailureReason.FEE_INSUFFICIENT: (0x100C, "WIRE_FEE_INSUFFICIENT"),
    FailureReason.CLTV: (0x100D, "WIRE_INCORRECT_CLTV_EXPIRY"),
    FailureReason.DISABLED: (0x1014, "WIRE_CHANNEL_DISABLED"),
}
_BELOW_MIN = (0x100B, "WIRE_AMOUNT_BELOW_MINIMUM")
_ABOVE_MAX = (0x1007, "WIRE_TEMPORARY_CHANNEL_FAILURE")  # BOLT 2: above htlc_maximum is temporary
BALANCE_RULES = ("half", "uniform", "role", "opener", "fees")


@dataclass(frozen=True, slots=True)
class Hop:
    """What happened at our node in one attempt (None in :attr:`Attempt.our_hop` if we were not on it)."""

    index: int  # position of our outgoing half-channel in the route
    in_edge: int
    out_edge: int
    in_msat: int
    out_msat: int
    fee_at_policy_msat: int  # what our policy in force asked for this out_msat
    reason: FailureReason | None  # set when we refused it
    failcode: int | None
    failname: str | None


@dataclass(slots=True)
class Attempt:
    """One HTLC attempt along a route."""

    route: list[int]
    amounts: list[int]  # amount carried over each half-channel of the route
    failed_at: int | None  # index of the refusing hop's outgoing half-channel, None if settled
    our_hop: Hop | None = None
    downstream_ok: bool | None = None  # had our hop passed, would the rest have had the balance?


def initial_balances(graph: Graph, rule: str, rng: np.random.Generator) -> np.ndarray:
    """Each half-channel's sending-side balance, by a documented seeded rule.

    ``half``: 50/50. ``uniform``: node1's share ~ U(0, 1). ``role``: the endpoint with
    more total capacity holds a share ~ U(0.5, 0.9) (large routing nodes and
    exchanges open channels and push liquidity out less often than they receive).
    ``opener``: node1 (the opener) holds everything, as after an open with push 0.
    ``fees``: liquidity has already flowed toward the cheaper direction, as arbitrage
    and rebalancers make it do on mainnet: node1's share is
    ``sigmoid((ln(1 + ppm1) - ln(1 + ppm2)) / 2) + N(0, 0.15)``, clipped to [0, 1], so a
    direction priced far below its reverse is usually nearly empty. A channel with a
    disabled direction gets U(0, 1).
    """
    cap = graph.capacity_msat
    if rule == "half":
        share = np.full(len(cap), 0.5)
    elif rule == "fees":
        ppm = np.log1p(graph.fee_ppm.astype(np.float64)).reshape(-1, 2)
        share = 1.0 / (1.0 + np.exp(-(ppm[:, 0] - ppm[:, 1]) / 2)) + rng.normal(0.0, 0.15, len(cap))
        both = graph.enabled.reshape(-1, 2).all(axis=1)
        share = np.clip(np.where(both, share, rng.uniform(0.0, 1.0, len(cap))), 0.0, 1.0)
    elif rule == "opener":
        share = np.ones(len(cap))
    elif rule == "uniform":
        share = rng.uniform(0.0, 1.0, len(cap))
    elif rule == "role":
        node_cap = graph.node_capacity_sat()
        big_first = node_cap[graph.node1] >= node_cap[graph.node2]
        big_share = rng.uniform(0.5, 0.9, len(cap))
        share = np.where(big_first, big_share, 1.0 - big_share)
    else:
        raise ValueError(f"unknown balance rule {rule!r} (choose from {', '.join(BALANCE_RULES)})")
    first = (cap * share).astype(np.int64)
    out = np.empty(2 * len(cap), dtype=np.int64)
    out[0::2], out[1::2] = first, cap - first
    return out


class SimNetwork:
    """The whole simulated network, seen from nowhere in particular.

    :param our_node: index of the managed node in ``graph``.
    :param balances: initial balance per half-channel (see :func:`initial_balances`).
    :param gossip_delay_s: time until senders learn a policy change of ours.
    """

    def __init__(
        self, graph: Graph, our_node: int, balances: np.ndarray, *, gossip_delay_s: float = 600.0, max_trees: int = 4096
    ) -> None:
        if balances.shape != (2 * graph.n_channels,):
            raise ValueError("balances must have one entry per half-channel")
        self.graph = graph
        self.us = our_node
        self.gossip_delay_s = gossip_delay_s
        src, dst = graph.src, graph.dst
        self.src, self.dst = src.tolist(), dst.tolist()
        self.bal: list[int] = balances.tolist()
        self.capacity_msat = graph.capacity_msat.tolist()
        zeros = np.zeros(2 * graph.n_channels, dtype=np.int64)
        self.view = RoutingView(
            src=src, dst=dst, capacity_msat=np.repeat(graph.capacity_msat, 2), enabled=graph.enabled.copy(),
            base=graph.base_fee_msat.copy(), ppm=graph.fee_ppm.copy(), htlc_min=graph.htlc_min_msat.copy(),
            htlc_max=graph.htlc_max_msat.copy(), cltv=graph.cltv_delta.copy(), in_base=zeros.copy(), in_ppm=zeros,
        )  # fmt: skip
        # Scalar mirrors of the view: the hot loop reads single values, which lists serve fastest.
        self._v_base, self._v_ppm = self.view.base.tolist(), self.view.ppm.tolist()
        self._v_cltv = self.view.cltv.tolist()
        self._v_in: dict[int, tuple[int, int]] = {}
        self.our_out = [e for e in range(2 * graph.n_channels) if self.src[e] == our_node]
        self.policy: dict[int, ChannelPolicy] = {e: self._initial_policy(e) for e in self.our_out}
        self.router = Router(self.view, graph.n_nodes, keep_nodes=np.array([our_node]), max_trees=max_trees)
        self._gossip: list[tuple[float, int, int, ChannelPolicy]] = []
        self._seq = 0

    def _initial_policy(self, e: int) -> ChannelPolicy:
        g = self.graph
        return ChannelPolicy(
            base_fee_msat=int(g.base_fee_msat[e]), fee_ppm=int(g.fee_ppm[e]), min_htlc_msat=int(g.htlc_min_msat[e]),
            max_htlc_msat=int(g.htlc_max_msat[e]) or None, cltv_delta=int(g.cltv_delta[e]),
            disabled=not bool(g.enabled[e]),
        )  # fmt: skip

    # -- our policy and gossip ------------------------------------------------------

    def set_policy(self, out_edge: int, policy: ChannelPolicy, now: float) -> None:
        """Put ``policy`` in force on our half-channel now; senders hear of it after the gossip delay."""
        self.policy[out_edge] = policy
        self._seq += 1
        heapq.heappush(self._gossip, (now + self.gossip_delay_s, self._seq, out_edge, policy))

    def next_gossip_time(self) -> float | None:
        return self._gossip[0][0] if self._gossip else None

    def propagate(self, until: float) -> int:
        """Apply every policy announcement due by ``until`` to the senders' view."""
        changed: list[int] = []
        while self._gossip and self._gossip[0][0] <= until:
            _, _, e, p = heapq.heappop(self._gossip)
            v, cap = self.view, self.capacity_msat[e >> 1]
            v.enabled[e] = not p.disabled
            v.base[e], v.ppm[e], v.cltv[e] = p.base_fee_msat, p.fee_ppm, p.cltv_delta
            v.htlc_min[e], v.htlc_max[e] = p.min_htlc_msat, p.max_htlc_msat if p.max_htlc_msat is not None else cap
            v.in_base[e ^ 1], v.in_ppm[e ^ 1] = p.inbound_base_fee_msat, p.inbound_fee_ppm
            self._v_base[e], self._v_ppm[e], self._v_cltv[e] = p.base_fee_msat, p.fee_ppm, p.cltv_delta
            self._v_in[e ^ 1] = (p.inbound_base_fee_msat, p.inbound_fee_ppm)
            changed += [e, e ^ 1]
        self.router.view_changed(sorted(set(changed)))
        return len(changed) // 2

    def set_public_fee_ppm(self, edges: list[int], ppm: list[int]) -> None:
        """Change other nodes' proportional fees; senders hear of it at once.

        Only other nodes' half-channels: ours change through :meth:`set_policy`, with
        the gossip delay. Other nodes never refuse for fees, so their policy in force
        and the view are the same thing.
        """
        for e, value in zip(edges, ppm, strict=True):
            if self.src[e] == self.us:
                raise ValueError(f"half-channel {e} is ours: use set_policy")
            self.view.ppm[e] = value
            self._v_ppm[e] = value
        self.router.view_changed(list(edges))

    # -- HTLCs ------------------------------------------------------------------------

    def amounts_for(self, route: list[int], amount: int, known: dict[int, ChannelPolicy] | None = None) -> list[int]:
        """What the sender puts on each hop, from the fees it last heard (the onion's amounts).

        :param known: policies this sender learned from failure messages during this payment.
        """
        out = [0] * len(route)
        out[-1] = amount
        base, ppm, us, src = self._v_base, self._v_ppm, self.us, self.src
        for i in range(len(route) - 1, 0, -1):
            e = route[i]
            if known and e in known:
                fee = known[e].fee_msat(out[i])
            else:
                fee = base[e] + out[i] * ppm[e] // 1_000_000
            if src[e] == us and route[i - 1] in self._v_in:
                ib, ip = self._v_in[route[i - 1]]
                fee = max(0, fee + ib + (out[i] + fee) * ip // 1_000_000)
            out[i - 1] = out[i] + fee
        return out

    def required_fee(self, in_edge: int, out_edge: int, out_msat: int) -> int:
        """The fee our policies in force ask to forward ``out_msat`` from ``in_edge`` to ``out_edge``."""
        p = self.policy[out_edge]
        fee = p.fee_msat(out_msat)
        pin = self.policy.get(in_edge ^ 1)
        if pin is not None and (pin.inbound_base_fee_msat or pin.inbound_fee_ppm):
            fee = max(0, fee + pin.inbound_fee_msat(out_msat + fee))
        return fee

    def _our_check(self, i: int, route: list[int], amounts: list[int], known: dict[int, ChannelPolicy] | None) -> Hop:
        in_e, out_e = route[i - 1], route[i]
        in_msat, out_msat = amounts[i - 1], amounts[i]
        p = self.policy[out_e]
        need = self.required_fee(in_e, out_e, out_msat)
        reason, code = None, None
        if p.disabled:
            reason, code = FailureReason.DISABLED, FAILCODES[FailureReason.DISABLED]
        elif out_msat < p.min_htlc_msat:
            reason, code = FailureReason.HTLC_LIMIT, _BELOW_MIN
        elif p.max_htlc_msat is not None and out_msat > p.max_htlc_msat:
            reason, code = FailureReason.HTLC_LIMIT, _ABOVE_MAX
        elif in_msat - out_msat < need:
            reason, code = FailureReason.FEE_INSUFFICIENT, FAILCODES[FailureReason.FEE_INSUFFICIENT]
        elif (known[out_e].cltv_delta if known and out_e in known else self._v_cltv[out_e]) < p.cltv_delta:
            reason, code = FailureReason.CLTV, FAILCODES[FailureReason.CLTV]
        elif self.bal[out_e] < out_msat:
            reason, code = FailureReason.INSUFFICIENT_BALANCE, FAILCODES[FailureReason.INSUFFICIENT_BALANCE]
        return Hop(i, in_e, out_e, in_msat, out_msat, need, reason, *(code if code else (None, None)))

    def attempt(self, route: list[int], amounts: list[int], known: dict[int, ChannelPolicy] | None = None) -> Attempt:
        """Send one HTLC along ``route``; settle it if every hop accepts. Hop 0 is the sender's own channel."""
        bal, src, us = self.bal, self.src, self.us
        result = Attempt(route, amounts, None)
        for i in range(1, len(route)):
            e = route[i]
            if src[e] == us:
                hop = self._our_check(i, route, amounts, known)
                result.our_hop = hop
                if hop.reason is not None:
                    result.failed_at = i
                    result.downstream_ok = all(bal[route[k]] >= amounts[k] for k in range(i + 1, len(route)))
                    return result
            elif bal[e] < amounts[i]:
                result.failed_at = i
                if result.our_hop is not None:
                    result.downstream_ok = False
                return result
        for e, amt in zip(route, amounts, strict=True):
            bal[e] -= amt
            bal[e ^ 1] += amt
        if result.our_hop is not None:
            result.downstream_ok = True
        return result

    # -- inspection -------------------------------------------------------------------

    def balances(self) -> np.ndarray:
        return np.asarray(self.bal, dtype=np.int64)

    def check_conservation(self) -> None:
        """Raise AssertionError unless every channel's two sides sum to its capacity, none negative."""
        bal = self.balances().reshape(-1, 2)
        if (bal < 0).any():
            raise AssertionError(f"negative balance on channel {int(np.flatnonzero((bal < 0).any(axis=1))[0])}")
        bad = np.flatnonzero(bal.sum(axis=1) != self.graph.capacity_msat)
        if len(bad):
            raise AssertionError(f"channel {int(bad[0])} balances do not sum to its capacity")
