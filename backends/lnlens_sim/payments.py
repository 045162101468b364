"""Paying and rebalancing over a :class:`SimNetwork`, as pay plugins and rebalancers do.

A sender routes from what it knows (graph and gossiped fees), sends one HTLC, and on
failure excludes the refusing channel and tries again, up to ``max_attempts`` HTLCs
(CLN's ``pay`` and LND's ``SendPaymentV2`` both retry this way). Its own first hop
it checks against its real balance before sending, as every wallet does. A
``fee_insufficient`` or ``incorrect_cltv_expiry`` failure carries the refusing
channel's current update (BOLT 4), so the sender applies it for the rest of the
payment and retries instead of excluding the channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lnlens_core.domain import ChannelPolicy, FailureReason

from .network import Attempt, SimNetwork

__all__ = ["PaymentResult", "RebalanceResult", "pay", "circular_rebalance", "quote_rebalance"]

_MAX_LOCAL_SKIPS = 8  # own channels tried and skipped before the sender gives up
_UPDATE_CARRIED = (FailureReason.FEE_INSUFFICIENT, FailureReason.CLTV)


@dataclass(slots=True)
class PaymentResult:
    """The outcome of one payment: every HTLC attempt, and the fee paid if it settled."""

    sender: int
    receiver: int
    amount_msat: int
    attempts: list[Attempt] = field(default_factory=list)
    settled: bool = False
    fee_msat: int = 0
    no_route: bool = False


@dataclass(frozen=True, slots=True)
class RebalanceResult:
    """A circular rebalance: liquidity left ``source`` and arrived on ``target`` (both ours)."""

    ok: bool
    amount_msat: int
    fee_msat: int
    attempts: int
    route: tuple[int, ...]  # half-channels, ours first and last
    reason: str = ""


def pay(net: SimNetwork, sender: int, receiver: int, amount: int, *, max_attempts: int = 10) -> PaymentResult:
    """Route and send ``amount`` msat from ``sender`` to ``receiver``, retrying like a pay plugin."""
    result = PaymentResult(sender, receiver, amount)
    excluded: set[int] = set()
    known: dict[int, ChannelPolicy] = {}
    skips = 0
    bal = net.bal
    while len(result.attempts) < max_attempts:
        route = net.router.route(sender, receiver, amount, excluded)
        if route is None:
            result.no_route = not result.attempts
            return result
        amounts = net.amounts_for(route, amount, known)
        if bal[route[0]] < amounts[0]:
            excluded.add(route[0])
            skips += 1
            if skips > _MAX_LOCAL_SKIPS:
                return result
            continue
        attempt = net.attempt(route, amounts, known)
        result.attempts.append(attempt)
        if attempt.failed_at is None:
            result.settled = True
            result.fee_msat = amounts[0] - amount
            return result
        failed_edge = route[attempt.failed_at]
        hop = attempt.our_hop
        if hop is not None and hop.reason in _UPDATE_CARRIED and failed_edge not in known:
            known[failed_edge] = net.policy[failed_edge]
        else:
            excluded.add(failed_edge)
    return result


def circular_rebalance(
    net: SimNetwork,
    source_edge: int,
    target_edge: int,
    amount: int,
    *,
    max_fee_msat: int | None = None,
    max_attempts: int = 10,
) -> RebalanceResult:
    """Move ``amount`` msat of our liquidity out over ``source_edge`` and back in on ``target_edge``'s channel.

    Both are our outgoing half-channels. The route is a real cycle: our channel to
    the source peer, a path through the graph that avoids us, and the target peer's
    channel back to us, which that peer charges for. The cost is the route's fee,
    paid by us; our own fees are not charged to ourselves.
    """
    us = net.us
    if net.src[source_edge] != us or net.src[target_edge] != us or source_edge == target_edge:
        raise ValueError("a circular rebalance needs two different outgoing half-channels of our node")
    in_edge = target_edge ^ 1
    peer_a, peer_b = net.dst[source_edge], net.src[in_edge]
    ours = set(net.our_out) | {e ^ 1 for e in net.our_out}
    excluded = set(ours)
    tries = 0
    if net.bal[source_edge] < amount:
        return RebalanceResult(False, amount, 0, 0, (), "source channel lacks the local balance")
    while tries < max_attempts:
        middle = net.router.route(peer_a, peer_b, amount, excluded) if peer_a != peer_b else []
        if middle is None:
            return RebalanceResult(False, amount, 0, tries, (), "no route between the two peers")
        route = [source_edge, *middle, in_edge]
        amounts = net.amounts_for(route, amount)
        fee = amounts[0] - amount
        if max_fee_msat is not None and fee > max_fee_msat:
            return RebalanceResult(False, amount, 0, tries, tuple(route), f"cheapest route costs {fee} msat")
        if net.bal[source_edge] < amounts[0]:
            return RebalanceResult(False, amount, 0, tries, tuple(route), "source channel lacks amount plus fee")
        tries += 1
        bal = net.bal
        failed = next((i for i in range(1, len(route)) if bal[route[i]] < amounts[i]), None)
        if failed is None:
            for e, amt in zip(route, amounts, strict=True):
                bal[e] -= amt
                bal[e ^ 1] += amt
            return RebalanceResult(True, amount, fee, tries, tuple(route))
        excluded.add(route[failed])
    return RebalanceResult(False, amount, 0, tries, (), "every attempt failed for lack of liquidity")


def quote_rebalance(net: SimNetwork, source_edge: int, target_edge: int, amount: int) -> tuple[list[int], int] | None:
    """The route a circular rebalance would try first and its fee, without sending anything.

    Like a real rebalancer's quote, it uses public information only (no balances).
    """
    in_edge = target_edge ^ 1
    peer_a, peer_b = net.dst[source_edge], net.src[in_edge]
    ours = set(net.our_out) | {e ^ 1 for e in net.our_out}
    middle = net.router.route(peer_a, peer_b, amount, ours) if peer_a != peer_b else []
    if middle is None:
        return None
    route = [source_edge, *middle, in_edge]
    return route, net.amounts_for(route, amount)[0] - amount
