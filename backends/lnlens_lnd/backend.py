"""LndBackend: the NodeBackend protocol over lnd's gRPC API.

:meth:`LndBackend.connect` does everything that can be wrong about a setup, once,
at start: it reads the certificate and macaroon, checks what the macaroon allows
(CheckMacaroonPermissions) against what the mode needs, reads GetInfo, checks the
network, and works out the capabilities from lnd's version. After that the backend
only translates.

History cursor: ``lnd1:<start>:<end>:<offset>``. lnd's ``index_offset`` counts events
inside a fixed ``[start_time, end_time]`` window, so the window never moves while
paging: ``end`` is fixed far in the future (new forwards always land at the end)
and ``start`` is re-anchored after each page to the second of the last event read,
with ``offset`` the number of events read within that second. lnd then skips at
most one second's worth of events, however long the history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from lnlens_core.backend import Capability, unsupported_fields
from lnlens_core.clock import Clock
from lnlens_core.domain import Channel, ChannelId, ChannelPolicy, FeeUpdate, ForwardPage, NodeInfo
from lnlens_core.errors import BackendRejected, ConfigError
from lnlens_core.fees.chargelnd import funding_fee_share_msat

from . import convert
from .connection import LndSettings, load_credentials
from .rpc import (
    METHODS,
    MODE_METHODS,
    OPTIONAL_METHODS,
    OPTIONAL_WRITE_METHODS,
    HtlcStream,
    LndAuthError,
    LndNotFound,
    LndRpc,
    MethodRefused,
    PermissionReport,
    check_permissions,
    ln,
    router,
    wallet,
)
from .rpc.permissions import FEES_IN_READ_MODE

__all__ = [
    "LndBackend",
    "build_backend",
    "FAR_END",
    "parse_cursor",
    "bake_command",
    "INBOUND_FEES_SINCE",
    "HTLC_IDS_SINCE",
]

log = logging.getLogger(__name__)

FAR_END = 4_102_444_800  # 2100-01-01T00:00:00Z: the fixed end of every history window
MAX_PAGE = 50_000  # lnd's documented cap on num_max_events
INBOUND_FEES_SINCE = (0, 18, 0)
HTLC_IDS_SINCE = (0, 20, 0)
CHAN_STATUS_SINCE = (0, 13, 0)
_FAILED_REASON = {0: "UNKNOWN", 1: "PENDING", 2: "NOT_FOUND", 3: "INTERNAL_ERR", 4: "INVALID_PARAMETER"}


def bake_command(mode: str = "apply", save_to: str = "lnlens.macaroon", optional: Sequence[str] = ()) -> str:
    """The ``lncli bakemacaroon`` line granting exactly what lnlens calls in ``mode``, plus the ``optional``
    methods (names from :data:`~lnlens_lnd.rpc.OPTIONAL_METHODS`, and in ``apply`` mode
    :data:`~lnlens_lnd.rpc.OPTIONAL_WRITE_METHODS`) a policy file needs."""
    known = (*OPTIONAL_METHODS, *(OPTIONAL_WRITE_METHODS if mode == "apply" else ()))
    unknown = [m for m in optional if m not in known]
    if unknown:
        raise ValueError(f"not optional methods in {mode} mode: {', '.join(unknown)} (optional: {', '.join(known)})")
    names = (*MODE_METHODS[mode], "CheckMacaroonPermissions", *optional)
    uris = " ".join(f"uri:{METHODS[m].path}" for m in names)
    return f"lncli bakemacaroon --save_to={save_to} --root_key_id=4711 {uris}"


def parse_cursor(cursor: str | None) -> tuple[int, int, int]:
    """``(start, end, offset)`` of a history cursor (None: the whole history)."""
    if not cursor:
        return 0, FAR_END, 0
    parts = cursor.split(":")
    if len(parts) != 4 or parts[0] != "lnd1" or not all(p.isdigit() for p in parts[1:]):
        raise BackendRejected(f"not an lnd history cursor: {cursor!r}")
    return int(parts[1]), int(parts[2]), int(parts[3])


class LndBackend:
    """An lnd node. Build it with :meth:`connect`.

    :ivar permissions: what the start check found the macaroon allows.
    """

    name = "lnd"

    def __init__(self, rpc: LndRpc, settings: LndSettings, info, permissions: PermissionReport, clock: Clock) -> None:
        self._rpc = rpc
        self.settings = settings
        self._clock = clock  # not .clock: a backend with a clock is a simulator to the policy commands
        self.permissions = permissions
        self.version = convert.parse_version(info.version)
        network = info.chains[0].network if info.chains else settings.network
        self.info = NodeInfo(info.identity_pubkey, info.alias, network, info.block_height, info.version, self.name)
        caps = {Capability.HTLC_LIMITS, Capability.CLTV_DELTA, Capability.LIVE_EVENTS}
        if self.version >= INBOUND_FEES_SINCE:
            caps.add(Capability.INBOUND_FEES)
            if settings.accept_positive_inbound_fees:
                caps.add(Capability.POSITIVE_INBOUND_FEES)
        self.capability_gaps: dict[Capability, str] = {}
        """What the node could do but lnlens cannot here, and what to change (the fee plan's notes show it)."""
        status = METHODS["UpdateChanStatus"]
        if self.version < CHAN_STATUS_SINCE:
            self.capability_gaps[Capability.DISABLE_CHANNEL] = (
                f"lnd {info.version.split()[0]} has no UpdateChanStatus (0.13 and later): channel status changes "
                "(strategy = disable, re-enabling) are not sent"
            )
        elif permissions.checked and permissions.mode == "apply" and "UpdateChanStatus" in permissions.optional_missing:
            self.capability_gaps[Capability.DISABLE_CHANNEL] = (
                f"the macaroon does not allow UpdateChanStatus: channel status changes ({status.needed_by}) are not "
                f"sent; add uri:{status.path} to the bake line"
            )
        else:
            caps.add(Capability.DISABLE_CHANNEL)
        self.capabilities: frozenset[Capability] = frozenset(caps)
        self.history_has_htlc_ids = self.version >= HTLC_IDS_SINCE
        self._funding: dict[ChannelId, tuple[str, list[int]]] = {}
        """Per channel, its funding txid and the capacities of our channels in that transaction, from the last
        ListChannels (the fee engine lists channels at the start of each run, then asks for funding fees)."""
        self._answers: dict[Any, Any] | None = None
        """lnd's answers read during :meth:`interval` (None outside one: every read asks lnd)."""

    @classmethod
    def connect(cls, settings: LndSettings, *, clock: Clock) -> LndBackend:
        """Connect, check the macaroon and the network, read the version.

        :raises ConfigError: a file is missing, the macaroon is refused or lacks what
            ``settings.mode`` needs, or lnd runs on another network.
        :raises BackendUnavailable: lnd cannot be reached or is not ready (retry).
        """
        creds = load_credentials(settings)
        mode = "apply" if settings.mode == "auto" else settings.mode
        rpc = LndRpc(creds, mode=mode, timeout_s=settings.timeout_s, tls_server_name=settings.tls_server_name)
        try:
            try:
                report = check_permissions(rpc)
                if settings.mode == "auto" and report.missing == ("UpdateChannelPolicy",):
                    rpc.restrict("read")
                    reads = tuple(m for m in report.optional_missing if m not in OPTIONAL_WRITE_METHODS)
                    report = replace(report, mode="read", missing=(), optional_missing=reads)
                    log.info("the macaroon from %s cannot call UpdateChannelPolicy: fee changes will be refused",
                             creds.macaroon_source)  # fmt: skip
                settings = replace(settings, mode=rpc.mode)
                _judge(report, creds.macaroon_source)
                info = rpc.call("GetInfo")
            except LndAuthError as exc:
                raise ConfigError(str(exc)) from None
            lnd_network = info.chains[0].network if info.chains else None
            if lnd_network and lnd_network != settings.network:
                raise ConfigError(
                    f"lnd at {creds.target} runs on {lnd_network}, but lnlens is set up for "
                    f'{settings.network}: set network = "{lnd_network}" in [lnd] (or --network)'
                )
        except BaseException:
            rpc.close()
            raise
        backend = cls(rpc, settings, info, report, clock)
        log.info(
            "connected to lnd %s (%s) at %s, %s mode, capabilities: %s",
            info.alias,
            info.version,
            creds.target,
            settings.mode,
            ", ".join(sorted(backend.capabilities)),
        )
        return backend

    def close(self) -> None:
        self._answers = None
        self._rpc.close()

    @contextmanager
    def interval(self) -> Iterator[None]:
        """One interval's work (``lnlens lnd run``): inside, ListChannels and FeeReport are asked once and each
        channel's graph edge (GetChanInfo) at most once, however many reads the analysis, the fee policy (applying
        and verifying its changes included) and the model make. The answers are dropped when it ends, so a read
        never returns an answer older than the interval; a change lnd accepted (UpdateChannelPolicy without
        ``failed_updates``, UpdateChanStatus without an error) is written into them, so a read after it returns
        our own last change without asking lnd again. Inside a longer one (a one-shot command's,
        :meth:`hold_answers`) it is part of that one."""
        if self._answers is not None:
            yield
            return
        self._answers = {}
        try:
            yield
        finally:
            self._answers = None

    def hold_answers(self) -> None:
        """A one-shot command (``lnlens policy plan|apply|explain|rollback --backend lnd``): one interval from now
        until :meth:`close`, so the whole command reads channels and each edge as one interval of ``lnlens lnd
        run`` does (each change lnd accepts written into the answers)."""
        self._answers = {}

    def _ask(self, method: str, request: Any = None, key: Any = None) -> Any:
        """``rpc.call(method, request)``; inside :meth:`interval`, the interval's earlier answer to the same
        ``method`` and ``key`` (an edge lnd does not have is remembered as such too)."""
        if self._answers is None:
            return self._rpc.call(method, request)
        key = (method, key)
        if key not in self._answers:
            try:
                self._answers[key] = self._rpc.call(method, request)
            except LndNotFound as exc:
                self._answers[key] = exc
        answer = self._answers[key]
        if isinstance(answer, LndNotFound):
            raise answer
        return answer

    def _accepted(self, chan_id: int, policy: ChannelPolicy) -> None:
        """lnd accepted ``policy`` as ours on ``chan_id``: the rest of the interval reads it from here."""
        if self._answers is not None:
            self._answers[("accepted", chan_id)] = policy

    def _edge(self, chan_id: int):
        return self._ask("GetChanInfo", ln.ChanInfoRequest(chan_id=chan_id), chan_id)

    # -- NodeBackend ------------------------------------------------------------------

    def get_info(self) -> NodeInfo:
        info = self._rpc.call("GetInfo")
        i = self.info
        return NodeInfo(i.pubkey, info.alias, i.network, info.block_height, info.version, self.name)

    def _own_policy(self, chan_id: int, fee) -> ChannelPolicy | None:
        """Our policy from the graph edge (FeeReport's fees win); None when lnd's graph lacks the channel or our
        side of it: lnd then cannot tell the current policy (and refuses to update it), so none is invented. Inside
        an interval, a policy lnd accepted from us since its first read wins."""
        if self._answers is not None and ("accepted", chan_id) in self._answers:
            return self._answers[("accepted", chan_id)]
        try:
            edge = self._edge(chan_id)
        except BackendRejected as exc:
            if isinstance(exc, LndAuthError):
                raise
            log.debug("GetChanInfo %d: %s; our policy on it is unknown", chan_id, exc)
            return None
        mine = "node1_policy" if edge.node1_pub == self.info.pubkey else "node2_policy"
        if not edge.HasField(mine):
            return None
        return convert.policy(getattr(edge, mine), fee)

    def _channels(self, only: ChannelId | None = None) -> list[tuple[Channel, Any]]:
        channels = self._ask("ListChannels", ln.ListChannelsRequest(peer_alias_lookup=True)).channels
        if only is not None:
            channels = [c for c in channels if c.chan_id == only.to_int()]
            if not channels:
                raise BackendRejected(f"channel {only} is not one of ours")
        if only is None:
            self._remember_funding(channels)
        fees = {f.chan_id: f for f in self._ask("FeeReport").channel_fees}
        out = []
        for ch in channels:
            policy = self._own_policy(ch.chan_id, fees.get(ch.chan_id))
            out.append((convert.channel(ch, policy), ch))
        return sorted(out, key=lambda pair: pair[0].channel_id)

    def list_channels(self) -> Sequence[Channel]:
        return [c for c, _ in self._channels()]

    def get_peer_policy(self, channel_id: ChannelId) -> ChannelPolicy | None:
        (channel, raw), *_ = self._channels(channel_id)
        edge = self._edge(raw.chan_id)
        if edge.node1_pub == raw.remote_pubkey:
            return convert.policy(edge.node1_policy) if edge.HasField("node1_policy") else None
        return convert.policy(edge.node2_policy) if edge.HasField("node2_policy") else None

    def list_forwards(self, cursor: str | None, *, limit: int = 1000) -> ForwardPage:
        if limit < 1:
            raise BackendRejected(f"limit must be at least 1, not {limit}")
        start, end, offset = parse_cursor(cursor)
        want = min(limit, MAX_PAGE)
        request = ln.ForwardingHistoryRequest(start_time=start, end_time=end, index_offset=offset, num_max_events=want)
        events = list(self._rpc.call("ForwardingHistory", request).forwarding_events)
        if events:
            last_second = _second(events[-1])
            if last_second == start:
                offset += len(events)
            else:
                start, offset = last_second, sum(1 for e in events if _second(e) == last_second)
        page = tuple(convert.history_forward(e) for e in events)
        return ForwardPage(page, f"lnd1:{start}:{end}:{offset}", len(events) < want)

    def set_channel_policy(self, channel_id: ChannelId, update: FeeUpdate) -> ChannelPolicy:
        if not self._rpc.allows("UpdateChannelPolicy"):
            raise MethodRefused(
                f"channel {channel_id}: lnlens runs read-only (dry_run = true, or a macaroon without "
                "UpdateChannelPolicy), so it does not send UpdateChannelPolicy; set dry_run = false and use a "
                "macaroon that allows it"
            )

        missing = unsupported_fields(update, self.capabilities)
        if missing:
            gap = self.capability_gaps.get(Capability.DISABLE_CHANNEL) if "disabled" in missing else None
            why = gap or f"lnd {self.info.version.split()[0]} cannot set {', '.join(missing)}"
            raise BackendRejected(f"channel {channel_id}: {why}")
        (channel, raw), *_ = self._channels(channel_id)
        if channel.local_policy is None:
            raise BackendRejected(f"channel {channel_id} is not in lnd's graph (GetChanInfo: edge not found): its "
                                  "current policy is unknown and lnd cannot update it")
        txid, _, index = raw.channel_point.partition(":")
        policy_fields = {k: v for k, v in update.fields_set().items() if k != "disabled"}
        # lnd answers each update with what it could not do (PolicyUpdateResponse.failed_updates: not found,
        # pending, invalid parameter) and writes the rest to its graph before answering, so what it accepted is the
        # policy now in force: no read-back (which would cost another ListChannels, FeeReport and GetChanInfo).
        policy = channel.local_policy
        if policy_fields:
            self._update_policy(channel_id, channel, update, txid, int(index))
            policy = FeeUpdate(**policy_fields).apply_to(policy)
            self._accepted(raw.chan_id, policy)
        if update.disabled is not None:
            enabled_now = self._update_status(channel_id, update.disabled, txid, int(index))
            if update.disabled or enabled_now:
                policy = replace(policy, disabled=update.disabled)
                self._accepted(raw.chan_id, policy)
        return policy

    def _update_status(self, channel_id: ChannelId, disabled: bool, txid: str, index: int) -> bool:
        """routerrpc UpdateChanStatus, as charge-lnd: DISABLE or ENABLE; an ENABLE lnd refuses (the channel is not
        active) is retried as AUTO (lnd re-enables the channel itself once it is usable). True when lnd did what was
        asked now; False after the AUTO fallback (the channel stays disabled until lnd enables it)."""
        point = ln.ChannelPoint(funding_txid_str=txid, output_index=index)
        action = router.DISABLE if disabled else router.ENABLE
        try:
            self._rpc.call("UpdateChanStatus", router.UpdateChanStatusRequest(chan_point=point, action=action))
            return True
        except LndAuthError:
            raise
        except BackendRejected as exc:
            if disabled:
                raise type(exc)(f"channel {channel_id}: {exc}") from None
            try:
                self._rpc.call("UpdateChanStatus", router.UpdateChanStatusRequest(chan_point=point, action=router.AUTO))
            except BackendRejected as again:
                raise type(again)(f"channel {channel_id}: {again}") from None
            return False

    def _update_policy(self, channel_id: ChannelId, channel: Channel, update: FeeUpdate, txid: str, index: int) -> None:
        assert channel.local_policy is not None  # set_channel_policy refuses a channel without one
        new = update.apply_to(channel.local_policy)
        # Not a patch: lnd writes base and rate even when omitted, so the current values are always resent.
        request = ln.PolicyUpdateRequest(
            chan_point=ln.ChannelPoint(funding_txid_str=txid, output_index=index),
            base_fee_msat=new.base_fee_msat,
            fee_rate_ppm=new.fee_ppm,
            time_lock_delta=new.cltv_delta,
            max_htlc_msat=new.max_htlc_msat or 0,
            min_htlc_msat=new.min_htlc_msat,
            min_htlc_msat_specified=update.min_htlc_msat is not None,
        )
        if update.inbound_base_fee_msat is not None or update.inbound_fee_ppm is not None:
            request.inbound_fee.CopyFrom(
                ln.InboundFee(base_fee_msat=new.inbound_base_fee_msat, fee_rate_ppm=new.inbound_fee_ppm)
            )
        try:
            response = self._rpc.call("UpdateChannelPolicy", request)
        except BackendRejected as exc:
            raise type(exc)(f"channel {channel_id}: {exc}") from None
        if response.failed_updates:
            reasons = "; ".join(
                f"{_FAILED_REASON.get(f.reason, f.reason)}: {f.update_error}" for f in response.failed_updates
            )
            raise BackendRejected(f"channel {channel_id}: lnd refused the policy update ({reasons})")

    # -- optional inputs of the fee engine (lnlens_core/fees/assemble.py) ----------------------
    # Each needs a permission the least-privilege macaroon leaves out unless a policy uses it; without it the call
    # raises LndAuthError naming the uri: to add and the policy keys that need it.

    def peer_node_stats(self, pubkey: str) -> tuple[int, int] | None:
        """A node's channels and their total capacity as lnd's graph knows them (GetNodeInfo)."""
        try:
            info = self._rpc.call("GetNodeInfo", ln.NodeInfoRequest(pub_key=pubkey))
        except LndNotFound:
            return None  # lnd has no announcement from this node
        return int(info.num_channels), int(info.total_capacity) * 1000

    def onchain_fee_rates(self, targets: Sequence[int]) -> dict[int, float]:
        """The wallet's estimate per confirmation target in sat/vB (WalletKit EstimateFee: sat/kw × 4 / 1000)."""
        rates: dict[int, float] = {}
        for target in targets:
            # lnd refuses targets below 2; charge-lnd asks for 2 then, and so does lnlens.
            answer = self._rpc.call("EstimateFee", wallet.EstimateFeeRequest(conf_target=max(2, int(target))))
            rates[target] = answer.sat_per_kw * 4 / 1000
        return rates

    def synced_to_chain(self) -> bool:
        return bool(self._rpc.call("GetInfo").synced_to_chain)

    def funding_fee_msat(self, channel: Channel) -> int | None:
        """This channel's capacity share of the fee our wallet paid for its funding transaction (GetTransactions
        over the funding block); None when the peer opened it or the wallet does not know the fee."""
        if channel.initiator is False:
            return None  # the peer's wallet paid
        if channel.channel_id not in self._funding:
            self._remember_funding(self._rpc.call("ListChannels", ln.ListChannelsRequest()).channels)
        found = self._funding.get(channel.channel_id)
        if found is None:
            raise BackendRejected(f"channel {channel.channel_id} is not one of ours")
        txid, batch = found
        height = channel.channel_id.block
        request = ln.GetTransactionsRequest(start_height=height, end_height=height)
        tx = next((t for t in self._rpc.call("GetTransactions", request).transactions if t.tx_hash == txid), None)
        if tx is None or tx.total_fees <= 0:
            # Not in our wallet (funded from elsewhere, or an alias id whose block is not the funding block),
            # or inputs the wallet cannot value: charge-lnd's "not paid by us".
            log.debug("channel %s: funding transaction %s not found with a fee in the wallet", channel.channel_id, txid)
            return None
        return funding_fee_share_msat(tx.total_fees * 1000, channel.capacity_msat, batch)

    def _remember_funding(self, channels) -> None:
        by_tx: dict[str, list[int]] = {}
        points: dict[ChannelId, str] = {}
        for ch in channels:
            txid = ch.channel_point.partition(":")[0]
            by_tx.setdefault(txid, []).append(int(ch.capacity) * 1000)
            points[ChannelId.from_int(ch.chan_id)] = txid
        self._funding = {cid: (txid, by_tx[txid]) for cid, txid in points.items()}

    # -- streams ----------------------------------------------------------------------

    def subscribe_htlc_events(self) -> HtlcStream:
        """Open SubscribeHtlcEvents (see :mod:`lnlens_lnd.events` for the reconnecting consumer)."""
        return self._rpc.stream("SubscribeHtlcEvents")


def build_backend(settings: Mapping[str, Any] | None = None, *, clock: Clock | None = None) -> LndBackend:
    """The ``lnlens.backends`` entry point (``lnlens policy ... --backend lnd``): an LndBackend from ``[lnd]``, its
    answers held for the command (:meth:`LndBackend.hold_answers`).

    The mode is ``auto``: fee changes are possible exactly when the macaroon allows UpdateChannelPolicy.
    """
    from lnlens_core.clock import SystemClock

    backend = LndBackend.connect(LndSettings.from_sources(settings or {}, mode="auto"), clock=clock or SystemClock())
    backend.hold_answers()  # the entry point serves one-shot commands only (`lnlens lnd run` connects itself)
    return backend


def _second(event) -> int:
    return event.timestamp_ns // 1_000_000_000 if event.timestamp_ns else event.timestamp


def _judge(report: PermissionReport, source: str) -> None:
    """Stop on a macaroon that cannot do the job; warn loudly about one that can do more."""
    if not report.checked:
        log.warning("%s", report.note)
        return
    if report.optional_missing:
        # Not a problem unless a policy file uses these keys; its runs then say what to add.
        log.info(
            "the macaroon from %s does not allow %s; policies using %s will report it (to use them, bake: %s)",
            source,
            ", ".join(report.optional_missing),
            "; ".join(METHODS[m].needed_by for m in report.optional_missing),
            bake_command(report.mode, optional=report.optional_missing),
        )
    if report.missing:
        raise ConfigError(
            f"the macaroon from {source} lacks {', '.join(report.missing)}, which lnlens needs in {report.mode} mode; "
            f"bake one with: {bake_command(report.mode)}"
        )
    if report.excess_write:
        log.error(
            "!!! The macaroon from %s can %s. lnlens needs none of that: if this host is compromised, so are your "
            "funds. Bake a least-privilege one: %s",
            source,
            ", ".join(report.excess),
            bake_command(report.mode),
        )
    elif report.excess == (FEES_IN_READ_MODE,):
        log.info("the macaroon from %s also allows UpdateChannelPolicy (for applying fees); this read-only command "
                 "never sends it", source)  # fmt: skip
    elif report.excess:
        log.warning(
            "the macaroon from %s can also %s, which lnlens does not need; consider: %s",
            source,
            ", ".join(report.excess),
            bake_command(report.mode),
        )
