"""Filling :class:`PolicyInputs` and :class:`PolicyEnvironment` from a backend and the store.

Only what :meth:`PolicySet.required_inputs` says the file reads is fetched. The
:class:`~lnlens_core.backend.NodeBackend` protocol has no call for some facts; a
backend may offer these optional methods, and the engine uses them when present:

- ``peer_node_stats(pubkey) -> (public_channels, capacity_msat) | None`` for ``node.*_channels``/``node.*_capacity``;
- ``onchain_fee_rates(targets) -> {target: sat_per_vbyte}`` for ``onchain.*`` and ``onchain_fee``;
- ``funding_fee_msat(channel) -> int | None`` for ``cost``;
- ``synced_to_chain() -> bool`` for ``onchain.synced_to_chain``.

Without them those criteria do not match (peer stats, synced), ``cost`` uses charge-lnd's
1 ppm, or the channel is kept with an error naming the missing estimate; each case adds a note.
When a method exists but fails (an LND macaroon without the optional permission, a
Core Lightning without bookkeeper), the run goes on: the note carries the backend's
message (which names what to add), on-chain criteria keep their channels with an
error, and ``cost`` keeps its channels with that error rather than guessing 1 ppm.
After the first failure a method is not called again in the run (it would fail alike).
Which backend offers which is tabled in docs/FEES.md.

``onchain.synced_to_chain`` waits as charge-lnd does: while the node says it is not synced,
it asks again once a second (on the engine's clock) for up to :data:`SYNC_WAIT_S`, logging
its progress, and is false only if the node never reports synced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend import NodeBackend
from ..clock import Clock
from ..domain import Channel, ChannelId, ChannelPolicy, NodeInfo
from ..errors import BackendError
from ..storage import Store
from .chargelnd import ActivityStats, PolicyEnvironment, PolicyInputs, PolicySet
from .signals import SIGNAL_WINDOW_S, ChannelSignals, FlowSums, ModelPrediction, compute_signals, fee_epochs

__all__ = ["Assembled", "assemble", "wait_for_sync", "SYNC_WAIT_S"]

log = logging.getLogger(__name__)

SYNC_WAIT_S = 300
"""charge-lnd 0.3.1 polls GetInfo once a second for up to 5 minutes before it calls a node not synced."""
SYNC_PROGRESS_S = 30
"""How often the wait says how long it has waited."""


def wait_for_sync(fetch: Callable[[], bool], clock: Clock, *, timeout_s: float = SYNC_WAIT_S) -> tuple[bool, float]:
    """Ask ``fetch`` once a second until it says synced or ``timeout_s`` have passed, as charge-lnd does.

    :returns: whether the node reported synced, and how long the wait took (seconds on ``clock``).
    """
    start = clock.now()
    if fetch():
        return True, 0.0
    log.warning("the node is not synced to the chain: asking again every second for up to %d s (as charge-lnd "
                "does) before onchain.synced_to_chain counts it as not synced", timeout_s)  # fmt: skip
    next_report = SYNC_PROGRESS_S
    while (waited := clock.now() - start) < timeout_s:
        clock.sleep(1.0)
        waited = clock.now() - start
        if fetch():
            log.warning("the node is synced to the chain after %.0f s", waited)
            return True, waited
        if waited >= next_report:
            log.warning("still not synced to the chain after %.0f s of %d s", waited, timeout_s)
            next_report += SYNC_PROGRESS_S
    return False, waited


@dataclass(slots=True)
class Assembled:
    """Inputs per channel, the run's environment and notes about what could not be provided."""

    env: PolicyEnvironment
    inputs: dict[ChannelId, PolicyInputs]
    notes: list[str] = field(default_factory=list)
    signals: dict[ChannelId, ChannelSignals] = field(default_factory=dict)


def _optional(backend: NodeBackend, name: str) -> Callable[..., Any] | None:
    method = getattr(backend, name, None)
    return method if callable(method) else None


def _environment(
    backend: NodeBackend,
    node: NodeInfo,
    needs: frozenset[str],
    targets: set[int],
    now: float,
    notes: list[str],
    clock: Clock | None = None,
) -> PolicyEnvironment:
    rates: dict[int, float] = {}
    if targets:
        fetch = _optional(backend, "onchain_fee_rates")
        if fetch is None:
            notes.append(f"backend {backend.name} gives no on-chain fee estimates: onchain.* criteria and "
                         "onchain_fee keep their channels with an error")  # fmt: skip
        else:
            try:
                rates = dict(fetch(sorted(targets)))
            except BackendError as exc:
                notes.append(f"no on-chain fee estimates ({exc}): onchain.* criteria and onchain_fee keep their "
                             "channels with an error")  # fmt: skip
    synced = None
    if "synced_to_chain" in needs:
        fetch = _optional(backend, "synced_to_chain")
        if fetch is None:
            notes.append(f"backend {backend.name} does not report chain sync: onchain.synced_to_chain never matches")
        else:
            try:
                if clock is None:
                    synced = bool(fetch())
                else:
                    synced, waited = wait_for_sync(lambda: bool(fetch()), clock)
                    if waited:
                        state = "synced" if synced else "still not synced, so onchain.synced_to_chain is false"
                        notes.append(f"waited {waited:.0f} s for the node to sync to the chain: {state}")
            except BackendError as exc:
                notes.append(f"chain sync unknown ({exc}): onchain.synced_to_chain never matches")
    # What the node could do with another permission or version, and what to change (LND: UpdateChanStatus).
    notes.extend(str(why) for why in (getattr(backend, "capability_gaps", None) or {}).values())
    return PolicyEnvironment(node=node, capabilities=backend.capabilities, now=now, onchain_fee_rates=rates,
                             synced_to_chain=synced)  # fmt: skip


def _activity(store: Store, windows: set[int], now: float) -> dict[int, dict[ChannelId, ActivityStats]]:
    """Settled forwards per channel in each window, summed by SQLite (what :func:`activity_by_channel` gives
    for the forwards received since a day before the longest window, a settle being timed when it settled)."""
    if not windows:
        return {}
    spans = sorted(windows)
    found = store.settled_activity([(now - w, now) for w in spans], received_since=now - spans[-1] - 86_400,
                                   received_until=now)  # fmt: skip
    return {w: {cid: ActivityStats(*row) for cid, row in per.items()} for w, per in zip(spans, found, strict=True)}


def _flow_sums(store: Store) -> FlowSums:
    return lambda book, since, until, propagation_s: store.flow_stats(book, [since], until,
                                                                      propagation_s=propagation_s)[0]  # fmt: skip


def assemble(
    backend: NodeBackend,
    store: Store,
    channels: Sequence[Channel],
    policies: PolicySet | None,
    *,
    node: NodeInfo,
    now: float,
    want_signals: bool,
    strategies: Mapping[str, type] | None = None,
    predictions: Mapping[ChannelId, ModelPrediction] | None = None,
    signal_window_s: int = SIGNAL_WINDOW_S,
    clock: Clock | None = None,
) -> Assembled:
    """Everything the evaluator and the strategies read for ``channels``, fetched once.

    :param clock: waits for chain sync on it (:func:`wait_for_sync`); None asks the node once.
    """
    notes: list[str] = []
    needs = policies.required_inputs() if policies is not None else frozenset({"peer_policy", "peer_channels"})
    targets = policies.conf_targets() if policies is not None else set()
    env = _environment(backend, node, needs, targets, now, notes, clock)
    by_peer: dict[str, list[Channel]] = {}
    for ch in channels:
        by_peer.setdefault(ch.peer_id, []).append(ch)
    activity = _activity(store, policies.activity_windows_s() if policies is not None else set(), now)
    signals: dict[ChannelId, ChannelSignals] = {}
    if want_signals and (policies is None or _reads_signals(policies, strategies)):
        with_history = policies is None or _reads(policies, strategies, "reads_fee_history", False)
        # the forwards summed by SQLite: the same numbers as counting each one (tests/fees_engine/test_assemble_sql.py)
        book = list(store.policy_history())
        history = fee_epochs(channels, (), book, now=now, level_sums=store.settled_by_fee_level) if with_history \
            else None
        signals = compute_signals(channels, (), book, now=now, window_s=signal_window_s, predictions=predictions,
                                  history=history, flow_sums=_flow_sums(store))  # fmt: skip
    peer_stats = _peer_stats(backend, channels, needs, notes)
    funding = _funding(backend, channels, needs, notes)
    inputs: dict[ChannelId, PolicyInputs] = {}
    for ch in channels:
        cid = ch.channel_id
        stats = peer_stats.get(ch.peer_id)
        fee, fee_error = funding.get(cid, (None, None))
        inputs[cid] = PolicyInputs(
            channel=ch,
            peer_policy=_peer_policy(backend, cid) if "peer_policy" in needs else None,
            peer_channels=tuple(by_peer[ch.peer_id]),
            peer_node_channels=stats[0] if stats else None,
            peer_node_capacity_msat=stats[1] if stats else None,
            activity={w: per.get(cid, ActivityStats()) for w, per in activity.items()},
            funding_fee_msat=fee,
            funding_fee_error=fee_error,
            signals=signals.get(cid),
        )
    return Assembled(env, inputs, notes, signals)


_CHARGE_LND = frozenset({"ignore", "ignore_fees", "static", "match_peer", "proportional", "cost", "onchain_fee",
                         "disable", "use_config"})  # fmt: skip


def _used(policies: PolicySet) -> set[str]:
    names = {p.strategy for p in (*policies.policies, policies.default) if p is not None and p.strategy}
    for nested in policies.nested.values():
        names |= _used(nested)
    return names


def _reads(policies: PolicySet, strategies: Mapping[str, type] | None, flag: str, default: bool) -> bool:
    for name in _used(policies) - _CHARGE_LND:
        cls = (strategies or {}).get(name)
        if cls is None or getattr(cls, flag, default):
            return True
    return False


def reads_model(policies: PolicySet, strategies: Mapping[str, type] | None) -> bool:
    """Whether a strategy of the file reads a model's prediction (declares ``reads_model``): only then is
    the model run for a plan. Third-party strategies get none unless they declare it."""
    return _reads(policies, strategies, "reads_model", False)


def _reads_signals(policies: PolicySet, strategies: Mapping[str, type] | None) -> bool:
    """Whether any strategy of the file reads :attr:`FeeContext.signals` (third-party ones may: yes)."""
    return _reads(policies, strategies, "reads_signals", True)


def _peer_policy(backend: NodeBackend, cid: ChannelId) -> ChannelPolicy | None:
    try:
        return backend.get_peer_policy(cid)
    except BackendError:
        return None


def _peer_stats(
    backend: NodeBackend, channels: Sequence[Channel], needs: frozenset[str], notes: list[str]
) -> dict[str, tuple[int, int]]:
    if not needs & {"peer_node_channels", "peer_node_capacity_msat"}:
        return {}
    fetch = _optional(backend, "peer_node_stats")
    if fetch is None:
        notes.append(f"backend {backend.name} does not report peers' public channels: node.*_channels and "
                     "node.*_capacity never match")  # fmt: skip
        return {}
    out = {}
    for peer in sorted({ch.peer_id for ch in channels}):
        try:
            found = fetch(peer)
        except BackendError as exc:
            notes.append(f"peers' public channels unknown ({exc}): node.*_channels and node.*_capacity do not "
                         "match the channels of peers not looked up before this")  # fmt: skip
            break
        if found is not None:
            out[peer] = (int(found[0]), int(found[1]))
    return out


def _funding(
    backend: NodeBackend, channels: Sequence[Channel], needs: frozenset[str], notes: list[str]
) -> dict[ChannelId, tuple[int | None, str | None]]:
    """Per channel, its funding fee share (None: not paid by our wallet) or why it is unknown."""
    if "funding_fee_msat" not in needs:
        return {}
    fetch = _optional(backend, "funding_fee_msat")
    if fetch is None:
        notes.append(f"backend {backend.name} does not report funding fees: cost uses charge-lnd's 1 ppm")
        return {}
    out: dict[ChannelId, tuple[int | None, str | None]] = {}
    failed: str | None = None
    for ch in channels:
        if failed is None:
            try:
                found = fetch(ch)
                out[ch.channel_id] = (int(found) if found is not None else None, None)
                continue
            except BackendError as exc:
                failed = f"funding fee unknown: {exc}"
                notes.append(f"{failed}; cost keeps its channels")
        out[ch.channel_id] = (None, failed)
    return out
