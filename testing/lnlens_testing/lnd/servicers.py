"""The Lightning and Router servicers of the fake lnd, reading and changing a SimNode."""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

from lnlens_lnd.rpc import grpc, ln, router

from lnlens_core.domain import ChannelId, FailureReason, FeeUpdate, ForwardStatus, HtlcEvent
from lnlens_core.errors import BackendRejected

from .auth import DEFAULT_PERMS, _AuthFailure
from .onchain import OnchainLightning

if TYPE_CHECKING:
    from .state import FakeLndState

# sim failure reason -> (lnrpc.Failure.FailureCode, routerrpc.FailureDetail), the inverse of REFERENCE.md C
_LINK_FAIL = {
    FailureReason.INSUFFICIENT_BALANCE: (15, 6),
    FailureReason.FEE_INSUFFICIENT: (12, 1),
    FailureReason.HTLC_LIMIT: (15, 5),
    FailureReason.CLTV: (13, 1),
    FailureReason.DISABLED: (14, 9),
    FailureReason.UNAVAILABLE: (18, 3),
    FailureReason.ONION: (9, 2),
    FailureReason.UNKNOWN: (998, 1),
}
_FORWARD = 3


def _ns(t: float) -> int:
    return int(round(t * 1e9))


def htlc_messages(event: HtlcEvent, out_htlc_id: int) -> list[tuple[int, Any]]:
    """The SubscribeHtlcEvents messages lnd sends for one forward, with their timestamps."""
    ids: dict[str, Any] = dict(
        incoming_channel_id=event.in_channel.to_int(),
        incoming_htlc_id=event.in_htlc_id or 0,
        outgoing_channel_id=event.out_channel.to_int() if event.out_channel else 0,
        event_type=_FORWARD,
    )
    info = router.HtlcInfo(
        incoming_amt_msat=event.in_msat,
        outgoing_amt_msat=event.out_msat or 0,
        incoming_timelock=800,
        outgoing_timelock=760,
    )
    received, resolved = _ns(event.received_time), _ns(event.resolved_time or event.received_time)
    final = router.FinalHtlcEvent(settled=event.status is ForwardStatus.SETTLED, offchain=True)
    if event.status is ForwardStatus.LOCAL_FAILED:
        reason = event.failure_reason or FailureReason.UNKNOWN
        wire, detail = _LINK_FAIL.get(reason, (998, 1))
        if reason is FailureReason.HTLC_LIMIT and event.failcode == 4107:
            wire, detail = 11, 1  # amount below the minimum
        fail = router.LinkFailEvent(info=info, wire_failure=wire, failure_detail=detail)
        return [
            (received, router.HtlcEvent(timestamp_ns=received, link_fail_event=fail, **ids)),
            (received, router.HtlcEvent(timestamp_ns=received, final_htlc_event=final, **ids)),
        ]
    out_ids = dict(ids, outgoing_htlc_id=out_htlc_id)
    offered = router.HtlcEvent(timestamp_ns=received, forward_event=router.ForwardEvent(info=info), **out_ids)
    if event.status is ForwardStatus.SETTLED:
        end = router.HtlcEvent(timestamp_ns=resolved, settle_event=router.SettleEvent(preimage=b"\x01" * 32), **out_ids)
    else:
        end = router.HtlcEvent(timestamp_ns=resolved, forward_fail_event=router.ForwardFailEvent(), **out_ids)
    return [
        (received, offered),
        (resolved, end),
        (resolved, router.HtlcEvent(timestamp_ns=resolved, final_htlc_event=final, **ids)),
    ]


_END = object()


def _in_graph(node, channel_id: ChannelId) -> bool:
    check = getattr(node, "in_graph", None)
    return True if check is None else bool(check(channel_id))


def _channel_by_point(fake: FakeLndState, point) -> ChannelId | None:
    """The channel at ``point``, as lnd's policy and status updates find it: in the graph (None: not there)."""
    wanted = (point.funding_txid_str, point.output_index)
    return next((c.channel_id for c in fake.node.list_channels()
                 if fake.chan_point(c.channel_id) == wanted and _in_graph(fake.node, c.channel_id)), None)  # fmt: skip


def _routing(policy) -> Any:
    return ln.RoutingPolicy(
        time_lock_delta=policy.cltv_delta,
        min_htlc=policy.min_htlc_msat,
        fee_base_msat=policy.base_fee_msat,
        fee_rate_milli_msat=policy.fee_ppm,
        disabled=policy.disabled,
        max_htlc_msat=policy.max_htlc_msat or 0,
        inbound_fee_base_msat=policy.inbound_base_fee_msat,
        inbound_fee_rate_milli_msat=policy.inbound_fee_ppm,
    )


class _Lightning(OnchainLightning):
    def __init__(self, fake: FakeLndState) -> None:
        self.fake = fake
        self.node = fake.node

    def GetInfo(self, request, context):  # noqa: N802 - gRPC method names
        with self.fake.lock:
            info = self.node.get_info()
            channels = self.node.list_channels()
        return ln.GetInfoResponse(
            identity_pubkey=info.pubkey,
            alias=info.alias,
            num_active_channels=len(channels),
            num_peers=len({c.peer_id for c in channels}),
            block_height=info.block_height,
            synced_to_chain=self.node.chain.synced,
            version=self.fake.version,
            chains=[ln.Chain(network=self.fake.network)],
            synced_to_graph=True,
        )

    def ListChannels(self, request, context):  # noqa: N802
        with self.fake.lock:
            channels = self.node.list_channels()
        out = []
        for c in channels:
            txid, index = self.fake.chan_point(c.channel_id)
            out.append(
                ln.Channel(
                    active=c.active,
                    remote_pubkey=c.peer_id,
                    channel_point=f"{txid}:{index}",
                    chan_id=c.channel_id.to_int(),
                    capacity=c.capacity_msat // 1000,
                    local_balance=c.local_balance_msat // 1000,
                    remote_balance=c.remote_balance_msat // 1000,
                    commit_fee=c.commit_fee_msat // 1000,  # lnd reports it whoever opened the channel
                    unsettled_balance=sum(h.amount_msat for h in c.pending_htlcs) // 1000,
                    pending_htlcs=[
                        ln.HTLC(incoming=h.incoming, amount=h.amount_msat // 1000, expiration_height=h.expiry_height,
                                htlc_index=n)
                        for n, h in enumerate(c.pending_htlcs)
                    ],  # fmt: skip
                    private=c.private,
                    initiator=bool(c.initiator),
                    peer_alias=c.peer_alias if request.peer_alias_lookup else "",  # as lnd: only on request
                    local_constraints=ln.ChannelConstraints(
                        chan_reserve_sat=c.local_reserve_msat // 1000,
                        min_htlc_msat=c.min_htlc_floor_msat or 0,
                        max_pending_amt_msat=c.capacity_msat if c.max_htlc_cap_msat is None else c.max_htlc_cap_msat,
                    ),
                    remote_constraints=ln.ChannelConstraints(chan_reserve_sat=c.remote_reserve_msat // 1000),
                )
            )
        return ln.ListChannelsResponse(channels=out)

    def FeeReport(self, request, context):  # noqa: N802
        with self.fake.lock:
            channels = self.node.list_channels()
        reports = []
        for c in channels:
            if not _in_graph(self.node, c.channel_id):
                continue  # lnd's FeeReport walks its graph: a channel missing there is missing here too
            p = c.local_policy
            txid, index = self.fake.chan_point(c.channel_id)
            reports.append(
                ln.ChannelFeeReport(
                    chan_id=c.channel_id.to_int(),
                    channel_point=f"{txid}:{index}",
                    base_fee_msat=p.base_fee_msat,
                    fee_per_mil=p.fee_ppm,
                    fee_rate=p.fee_ppm / 1e6,
                    inbound_base_fee_msat=p.inbound_base_fee_msat,
                    inbound_fee_per_mil=p.inbound_fee_ppm,
                )
            )
        return ln.FeeReportResponse(channel_fees=reports)

    def ForwardingHistory(self, request, context):  # noqa: N802
        fake = self.fake
        start = request.start_time * 1_000_000_000
        end = (request.end_time or int(fake.node.clock.now())) * 1_000_000_000
        limit = request.num_max_events or 100
        with_ids = fake.version_tuple() >= (0, 20, 0)
        with fake.lock:
            window = [(ts, e) for ts, e in fake.log if start <= ts <= end]
        page = window[request.index_offset : request.index_offset + limit]
        events = []
        for ts, e in page:
            ev = ln.ForwardingEvent(
                timestamp=ts // 1_000_000_000,
                timestamp_ns=ts,
                chan_id_in=e.in_channel.to_int(),
                chan_id_out=e.out_channel.to_int(),
                amt_in=e.in_msat // 1000,
                amt_out=(e.out_msat or 0) // 1000,
                fee=(e.fee_msat or 0) // 1000,
                fee_msat=e.fee_msat or 0,
                amt_in_msat=e.in_msat,
                amt_out_msat=e.out_msat or 0,
            )
            if with_ids:
                ev.incoming_htlc_id = e.in_htlc_id or 0
            events.append(ev)
        return ln.ForwardingHistoryResponse(
            forwarding_events=events, last_offset_index=request.index_offset + len(events)
        )

    def GetChanInfo(self, request, context):  # noqa: N802
        with self.fake.lock:
            try:
                cid = ChannelId.from_int(request.chan_id)
                channel = next(c for c in self.node.list_channels() if c.channel_id == cid)
                if not _in_graph(self.node, cid):
                    raise StopIteration
            except (StopIteration, ValueError):
                context.abort(grpc.StatusCode.NOT_FOUND, "edge not found")
            peer = self.node.get_peer_policy(cid)
            us = self.node.info.pubkey
        txid, index = self.fake.chan_point(cid)
        ours, theirs = _routing(channel.local_policy), (_routing(peer) if peer is not None else None)
        first_is_us = us < channel.peer_id  # lnd orders the two nodes by pubkey
        edge = ln.ChannelEdge(
            channel_id=request.chan_id,
            chan_point=f"{txid}:{index}",
            capacity=channel.capacity_msat // 1000,
            node1_pub=us if first_is_us else channel.peer_id,
            node2_pub=channel.peer_id if first_is_us else us,
        )
        for field_name, policy in (
            ("node1_policy", ours if first_is_us else theirs),
            ("node2_policy", theirs if first_is_us else ours),
        ):
            if policy is not None:
                getattr(edge, field_name).CopyFrom(policy)
        return edge

    def UpdateChannelPolicy(self, request, context):  # noqa: N802
        fake = self.fake
        fake.record_write("UpdateChannelPolicy", request, context)
        version = fake.version_tuple()
        if request.fee_rate and request.fee_rate_ppm:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "fee_rate and fee_rate_ppm are mutually exclusive")
        minimum = 24 if version >= (0, 21, 0) else 18
        if request.time_lock_delta < minimum:
            context.abort(
                grpc.StatusCode.UNKNOWN,
                f"time lock delta of {request.time_lock_delta} is too small, minimum supported is {minimum}",
            )
        if request.WhichOneof("scope") != "chan_point":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake lnd updates one channel at a time")
        inbound = request.inbound_fee if request.HasField("inbound_fee") and version >= (0, 18, 0) else None
        if (
            inbound is not None
            and (inbound.base_fee_msat > 0 or inbound.fee_rate_ppm > 0)
            and not fake.accept_positive_inbound_fees
        ):
            context.abort(
                grpc.StatusCode.UNKNOWN, "positive values for inbound fee rate ppm or base fee msat are not supported"
            )
        point = request.chan_point
        ppm = request.fee_rate_ppm or int(round(request.fee_rate * 1e6))
        update = FeeUpdate(
            base_fee_msat=request.base_fee_msat,
            fee_ppm=ppm,
            cltv_delta=request.time_lock_delta,
            max_htlc_msat=request.max_htlc_msat or None,
            min_htlc_msat=request.min_htlc_msat if request.min_htlc_msat_specified else None,
            inbound_base_fee_msat=inbound.base_fee_msat if inbound is not None else None,
            inbound_fee_ppm=inbound.fee_rate_ppm if inbound is not None else None,
        )
        with fake.lock:
            target = _channel_by_point(fake, point)
            outpoint = ln.OutPoint(txid_str=point.funding_txid_str, output_index=point.output_index)
            if target is None:
                return ln.PolicyUpdateResponse(
                    failed_updates=[ln.FailedUpdate(outpoint=outpoint, reason=2, update_error="unable to find channel")]
                )
            try:
                if not fake.frozen:
                    self.node.set_channel_policy(target, update)
            except BackendRejected as exc:
                return ln.PolicyUpdateResponse(
                    failed_updates=[ln.FailedUpdate(outpoint=outpoint, reason=4, update_error=str(exc))]
                )
        return ln.PolicyUpdateResponse()

    def CheckMacaroonPermissions(self, request, context):  # noqa: N802
        fake = self.fake
        fake.permission_checks.append(request)
        try:
            ops = fake.macaroons.verify(request.macaroon, fake.node.clock.now())
        except _AuthFailure as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if request.check_default_perms_from_full_method:
            if request.permissions:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "cannot check default permissions from full method and provide permissions at the same time",
                )
            if request.fullMethod not in DEFAULT_PERMS:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown permissions for {request.fullMethod}")
            ok = fake.macaroons.allows(ops, request.fullMethod)
        else:
            wanted = [f"{p.entity}:{p.action}" for p in request.permissions]
            ok = f"uri:{request.fullMethod}" in ops or all(w in ops for w in wanted)
        if not ok:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "permission denied")
        return ln.CheckMacPermResponse(valid=True)


class _Router:
    def __init__(self, fake: FakeLndState) -> None:
        self.fake = fake

    def UpdateChanStatus(self, request, context):  # noqa: N802
        """ENABLE or DISABLE our direction of a channel (the simulator's policy ``disabled``); AUTO enables an
        active channel. lnd refuses a manual ENABLE of an inactive channel; before 0.13 the method does not exist."""
        fake = self.fake
        if fake.version_tuple() < (0, 13, 0):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "unknown method UpdateChanStatus for service routerrpc.Router")
        fake.record_write("UpdateChanStatus", request, context)
        with fake.lock:
            target = _channel_by_point(fake, request.chan_point)
            channel = next((c for c in fake.node.list_channels() if c.channel_id == target), None)
            if channel is None:
                context.abort(grpc.StatusCode.UNKNOWN, "unable to find channel")
            if request.action == router.ENABLE and not channel.active:
                context.abort(grpc.StatusCode.UNKNOWN, "channel is not active, cannot enable it manually")
            disabled = request.action == router.DISABLE
            if not disabled and request.action == router.AUTO and not channel.active:
                return router.UpdateChanStatusResponse()
            if not fake.frozen:
                fake.node.set_channel_policy(channel.channel_id, FeeUpdate(disabled=disabled))
        return router.UpdateChanStatusResponse()

    def SubscribeHtlcEvents(self, request, context):  # noqa: N802
        q: queue.Queue = queue.Queue()
        with self.fake.lock:
            self.fake._subscribers.append(q)
        yield router.HtlcEvent(subscribed_event=router.SubscribedEvent())
        try:
            while context.is_active():
                try:
                    msg = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if msg is _END:
                    return
                yield msg
                with self.fake.lock:
                    self.fake.delivered += 1
        finally:
            with self.fake.lock:
                if q in self.fake._subscribers:
                    self.fake._subscribers.remove(q)
