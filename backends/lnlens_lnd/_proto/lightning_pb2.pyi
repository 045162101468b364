from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Chain(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: str
    def __init__(self, network: _Optional[str] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("identity_pubkey", "alias", "num_pending_channels", "num_active_channels", "num_peers", "block_height", "synced_to_chain", "version", "num_inactive_channels", "chains", "synced_to_graph")
    IDENTITY_PUBKEY_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    NUM_PENDING_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NUM_ACTIVE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NUM_PEERS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SYNCED_TO_CHAIN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_INACTIVE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    SYNCED_TO_GRAPH_FIELD_NUMBER: _ClassVar[int]
    identity_pubkey: str
    alias: str
    num_pending_channels: int
    num_active_channels: int
    num_peers: int
    block_height: int
    synced_to_chain: bool
    version: str
    num_inactive_channels: int
    chains: _containers.RepeatedCompositeFieldContainer[Chain]
    synced_to_graph: bool
    def __init__(self, identity_pubkey: _Optional[str] = ..., alias: _Optional[str] = ..., num_pending_channels: _Optional[int] = ..., num_active_channels: _Optional[int] = ..., num_peers: _Optional[int] = ..., block_height: _Optional[int] = ..., synced_to_chain: _Optional[bool] = ..., version: _Optional[str] = ..., num_inactive_channels: _Optional[int] = ..., chains: _Optional[_Iterable[_Union[Chain, _Mapping]]] = ..., synced_to_graph: _Optional[bool] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ("active_only", "inactive_only", "public_only", "private_only", "peer", "peer_alias_lookup")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ONLY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    PEER_ALIAS_LOOKUP_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    inactive_only: bool
    public_only: bool
    private_only: bool
    peer: bytes
    peer_alias_lookup: bool
    def __init__(self, active_only: _Optional[bool] = ..., inactive_only: _Optional[bool] = ..., public_only: _Optional[bool] = ..., private_only: _Optional[bool] = ..., peer: _Optional[bytes] = ..., peer_alias_lookup: _Optional[bool] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ...) -> None: ...

class HTLC(_message.Message):
    __slots__ = ("incoming", "amount", "expiration_height", "htlc_index", "forwarding_channel", "forwarding_htlc_index")
    INCOMING_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HTLC_INDEX_FIELD_NUMBER: _ClassVar[int]
    FORWARDING_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FORWARDING_HTLC_INDEX_FIELD_NUMBER: _ClassVar[int]
    incoming: bool
    amount: int
    expiration_height: int
    htlc_index: int
    forwarding_channel: int
    forwarding_htlc_index: int
    def __init__(self, incoming: _Optional[bool] = ..., amount: _Optional[int] = ..., expiration_height: _Optional[int] = ..., htlc_index: _Optional[int] = ..., forwarding_channel: _Optional[int] = ..., forwarding_htlc_index: _Optional[int] = ...) -> None: ...

class ChannelConstraints(_message.Message):
    __slots__ = ("csv_delay", "chan_reserve_sat", "dust_limit_sat", "max_pending_amt_msat", "min_htlc_msat", "max_accepted_htlcs")
    CSV_DELAY_FIELD_NUMBER: _ClassVar[int]
    CHAN_RESERVE_SAT_FIELD_NUMBER: _ClassVar[int]
    DUST_LIMIT_SAT_FIELD_NUMBER: _ClassVar[int]
    MAX_PENDING_AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    MIN_HTLC_MSAT_FIELD_NUMBER: _ClassVar[int]
    MAX_ACCEPTED_HTLCS_FIELD_NUMBER: _ClassVar[int]
    csv_delay: int
    chan_reserve_sat: int
    dust_limit_sat: int
    max_pending_amt_msat: int
    min_htlc_msat: int
    max_accepted_htlcs: int
    def __init__(self, csv_delay: _Optional[int] = ..., chan_reserve_sat: _Optional[int] = ..., dust_limit_sat: _Optional[int] = ..., max_pending_amt_msat: _Optional[int] = ..., min_htlc_msat: _Optional[int] = ..., max_accepted_htlcs: _Optional[int] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("active", "remote_pubkey", "channel_point", "chan_id", "capacity", "local_balance", "remote_balance", "commit_fee", "unsettled_balance", "total_satoshis_sent", "total_satoshis_received", "pending_htlcs", "private", "initiator", "chan_status_flags", "lifetime", "uptime", "local_constraints", "remote_constraints", "alias_scids", "zero_conf_confirmed_scid", "peer_alias")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_PUBKEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_POINT_FIELD_NUMBER: _ClassVar[int]
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_BALANCE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_BALANCE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FEE_FIELD_NUMBER: _ClassVar[int]
    UNSETTLED_BALANCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SATOSHIS_SENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SATOSHIS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PENDING_HTLCS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    CHAN_STATUS_FLAGS_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    ALIAS_SCIDS_FIELD_NUMBER: _ClassVar[int]
    ZERO_CONF_CONFIRMED_SCID_FIELD_NUMBER: _ClassVar[int]
    PEER_ALIAS_FIELD_NUMBER: _ClassVar[int]
    active: bool
    remote_pubkey: str
    channel_point: str
    chan_id: int
    capacity: int
    local_balance: int
    remote_balance: int
    commit_fee: int
    unsettled_balance: int
    total_satoshis_sent: int
    total_satoshis_received: int
    pending_htlcs: _containers.RepeatedCompositeFieldContainer[HTLC]
    private: bool
    initiator: bool
    chan_status_flags: str
    lifetime: int
    uptime: int
    local_constraints: ChannelConstraints
    remote_constraints: ChannelConstraints
    alias_scids: _containers.RepeatedScalarFieldContainer[int]
    zero_conf_confirmed_scid: int
    peer_alias: str
    def __init__(self, active: _Optional[bool] = ..., remote_pubkey: _Optional[str] = ..., channel_point: _Optional[str] = ..., chan_id: _Optional[int] = ..., capacity: _Optional[int] = ..., local_balance: _Optional[int] = ..., remote_balance: _Optional[int] = ..., commit_fee: _Optional[int] = ..., unsettled_balance: _Optional[int] = ..., total_satoshis_sent: _Optional[int] = ..., total_satoshis_received: _Optional[int] = ..., pending_htlcs: _Optional[_Iterable[_Union[HTLC, _Mapping]]] = ..., private: _Optional[bool] = ..., initiator: _Optional[bool] = ..., chan_status_flags: _Optional[str] = ..., lifetime: _Optional[int] = ..., uptime: _Optional[int] = ..., local_constraints: _Optional[_Union[ChannelConstraints, _Mapping]] = ..., remote_constraints: _Optional[_Union[ChannelConstraints, _Mapping]] = ..., alias_scids: _Optional[_Iterable[int]] = ..., zero_conf_confirmed_scid: _Optional[int] = ..., peer_alias: _Optional[str] = ...) -> None: ...

class FeeReportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelFeeReport(_message.Message):
    __slots__ = ("channel_point", "base_fee_msat", "fee_per_mil", "fee_rate", "chan_id", "inbound_base_fee_msat", "inbound_fee_per_mil")
    CHANNEL_POINT_FIELD_NUMBER: _ClassVar[int]
    BASE_FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_MIL_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    INBOUND_BASE_FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FEE_PER_MIL_FIELD_NUMBER: _ClassVar[int]
    channel_point: str
    base_fee_msat: int
    fee_per_mil: int
    fee_rate: float
    chan_id: int
    inbound_base_fee_msat: int
    inbound_fee_per_mil: int
    def __init__(self, channel_point: _Optional[str] = ..., base_fee_msat: _Optional[int] = ..., fee_per_mil: _Optional[int] = ..., fee_rate: _Optional[float] = ..., chan_id: _Optional[int] = ..., inbound_base_fee_msat: _Optional[int] = ..., inbound_fee_per_mil: _Optional[int] = ...) -> None: ...

class FeeReportResponse(_message.Message):
    __slots__ = ("channel_fees", "day_fee_sum", "week_fee_sum", "month_fee_sum")
    CHANNEL_FEES_FIELD_NUMBER: _ClassVar[int]
    DAY_FEE_SUM_FIELD_NUMBER: _ClassVar[int]
    WEEK_FEE_SUM_FIELD_NUMBER: _ClassVar[int]
    MONTH_FEE_SUM_FIELD_NUMBER: _ClassVar[int]
    channel_fees: _containers.RepeatedCompositeFieldContainer[ChannelFeeReport]
    day_fee_sum: int
    week_fee_sum: int
    month_fee_sum: int
    def __init__(self, channel_fees: _Optional[_Iterable[_Union[ChannelFeeReport, _Mapping]]] = ..., day_fee_sum: _Optional[int] = ..., week_fee_sum: _Optional[int] = ..., month_fee_sum: _Optional[int] = ...) -> None: ...

class ForwardingHistoryRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "index_offset", "num_max_events", "peer_alias_lookup", "incoming_chan_ids", "outgoing_chan_ids")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INDEX_OFFSET_FIELD_NUMBER: _ClassVar[int]
    NUM_MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PEER_ALIAS_LOOKUP_FIELD_NUMBER: _ClassVar[int]
    INCOMING_CHAN_IDS_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_CHAN_IDS_FIELD_NUMBER: _ClassVar[int]
    start_time: int
    end_time: int
    index_offset: int
    num_max_events: int
    peer_alias_lookup: bool
    incoming_chan_ids: _containers.RepeatedScalarFieldContainer[int]
    outgoing_chan_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., index_offset: _Optional[int] = ..., num_max_events: _Optional[int] = ..., peer_alias_lookup: _Optional[bool] = ..., incoming_chan_ids: _Optional[_Iterable[int]] = ..., outgoing_chan_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ForwardingEvent(_message.Message):
    __slots__ = ("timestamp", "chan_id_in", "chan_id_out", "amt_in", "amt_out", "fee", "fee_msat", "amt_in_msat", "amt_out_msat", "timestamp_ns", "peer_alias_in", "peer_alias_out", "incoming_htlc_id", "outgoing_htlc_id")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CHAN_ID_IN_FIELD_NUMBER: _ClassVar[int]
    CHAN_ID_OUT_FIELD_NUMBER: _ClassVar[int]
    AMT_IN_FIELD_NUMBER: _ClassVar[int]
    AMT_OUT_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    AMT_IN_MSAT_FIELD_NUMBER: _ClassVar[int]
    AMT_OUT_MSAT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    PEER_ALIAS_IN_FIELD_NUMBER: _ClassVar[int]
    PEER_ALIAS_OUT_FIELD_NUMBER: _ClassVar[int]
    INCOMING_HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    chan_id_in: int
    chan_id_out: int
    amt_in: int
    amt_out: int
    fee: int
    fee_msat: int
    amt_in_msat: int
    amt_out_msat: int
    timestamp_ns: int
    peer_alias_in: str
    peer_alias_out: str
    incoming_htlc_id: int
    outgoing_htlc_id: int
    def __init__(self, timestamp: _Optional[int] = ..., chan_id_in: _Optional[int] = ..., chan_id_out: _Optional[int] = ..., amt_in: _Optional[int] = ..., amt_out: _Optional[int] = ..., fee: _Optional[int] = ..., fee_msat: _Optional[int] = ..., amt_in_msat: _Optional[int] = ..., amt_out_msat: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., peer_alias_in: _Optional[str] = ..., peer_alias_out: _Optional[str] = ..., incoming_htlc_id: _Optional[int] = ..., outgoing_htlc_id: _Optional[int] = ...) -> None: ...

class ForwardingHistoryResponse(_message.Message):
    __slots__ = ("forwarding_events", "last_offset_index")
    FORWARDING_EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFSET_INDEX_FIELD_NUMBER: _ClassVar[int]
    forwarding_events: _containers.RepeatedCompositeFieldContainer[ForwardingEvent]
    last_offset_index: int
    def __init__(self, forwarding_events: _Optional[_Iterable[_Union[ForwardingEvent, _Mapping]]] = ..., last_offset_index: _Optional[int] = ...) -> None: ...

class ChanInfoRequest(_message.Message):
    __slots__ = ("chan_id", "chan_point", "include_auth_proof")
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAN_POINT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_AUTH_PROOF_FIELD_NUMBER: _ClassVar[int]
    chan_id: int
    chan_point: str
    include_auth_proof: bool
    def __init__(self, chan_id: _Optional[int] = ..., chan_point: _Optional[str] = ..., include_auth_proof: _Optional[bool] = ...) -> None: ...

class RoutingPolicy(_message.Message):
    __slots__ = ("time_lock_delta", "min_htlc", "fee_base_msat", "fee_rate_milli_msat", "disabled", "max_htlc_msat", "last_update", "inbound_fee_base_msat", "inbound_fee_rate_milli_msat")
    TIME_LOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    MIN_HTLC_FIELD_NUMBER: _ClassVar[int]
    FEE_BASE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_MILLI_MSAT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_HTLC_MSAT_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FEE_BASE_MSAT_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FEE_RATE_MILLI_MSAT_FIELD_NUMBER: _ClassVar[int]
    time_lock_delta: int
    min_htlc: int
    fee_base_msat: int
    fee_rate_milli_msat: int
    disabled: bool
    max_htlc_msat: int
    last_update: int
    inbound_fee_base_msat: int
    inbound_fee_rate_milli_msat: int
    def __init__(self, time_lock_delta: _Optional[int] = ..., min_htlc: _Optional[int] = ..., fee_base_msat: _Optional[int] = ..., fee_rate_milli_msat: _Optional[int] = ..., disabled: _Optional[bool] = ..., max_htlc_msat: _Optional[int] = ..., last_update: _Optional[int] = ..., inbound_fee_base_msat: _Optional[int] = ..., inbound_fee_rate_milli_msat: _Optional[int] = ...) -> None: ...

class ChannelEdge(_message.Message):
    __slots__ = ("channel_id", "chan_point", "node1_pub", "node2_pub", "capacity", "node1_policy", "node2_policy")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHAN_POINT_FIELD_NUMBER: _ClassVar[int]
    NODE1_PUB_FIELD_NUMBER: _ClassVar[int]
    NODE2_PUB_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    NODE1_POLICY_FIELD_NUMBER: _ClassVar[int]
    NODE2_POLICY_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    chan_point: str
    node1_pub: str
    node2_pub: str
    capacity: int
    node1_policy: RoutingPolicy
    node2_policy: RoutingPolicy
    def __init__(self, channel_id: _Optional[int] = ..., chan_point: _Optional[str] = ..., node1_pub: _Optional[str] = ..., node2_pub: _Optional[str] = ..., capacity: _Optional[int] = ..., node1_policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., node2_policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ...) -> None: ...

class ChannelPoint(_message.Message):
    __slots__ = ("funding_txid_bytes", "funding_txid_str", "output_index")
    FUNDING_TXID_BYTES_FIELD_NUMBER: _ClassVar[int]
    FUNDING_TXID_STR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    funding_txid_bytes: bytes
    funding_txid_str: str
    output_index: int
    def __init__(self, funding_txid_bytes: _Optional[bytes] = ..., funding_txid_str: _Optional[str] = ..., output_index: _Optional[int] = ...) -> None: ...

class InboundFee(_message.Message):
    __slots__ = ("base_fee_msat", "fee_rate_ppm")
    BASE_FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    base_fee_msat: int
    fee_rate_ppm: int
    def __init__(self, base_fee_msat: _Optional[int] = ..., fee_rate_ppm: _Optional[int] = ...) -> None: ...

class PolicyUpdateRequest(_message.Message):
    __slots__ = ("chan_point", "base_fee_msat", "fee_rate", "time_lock_delta", "max_htlc_msat", "min_htlc_msat", "min_htlc_msat_specified", "fee_rate_ppm", "inbound_fee", "create_missing_edge")
    GLOBAL_FIELD_NUMBER: _ClassVar[int]
    CHAN_POINT_FIELD_NUMBER: _ClassVar[int]
    BASE_FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_FIELD_NUMBER: _ClassVar[int]
    TIME_LOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    MAX_HTLC_MSAT_FIELD_NUMBER: _ClassVar[int]
    MIN_HTLC_MSAT_FIELD_NUMBER: _ClassVar[int]
    MIN_HTLC_MSAT_SPECIFIED_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FEE_FIELD_NUMBER: _ClassVar[int]
    CREATE_MISSING_EDGE_FIELD_NUMBER: _ClassVar[int]
    chan_point: ChannelPoint
    base_fee_msat: int
    fee_rate: float
    time_lock_delta: int
    max_htlc_msat: int
    min_htlc_msat: int
    min_htlc_msat_specified: bool
    fee_rate_ppm: int
    inbound_fee: InboundFee
    create_missing_edge: bool
    def __init__(self, chan_point: _Optional[_Union[ChannelPoint, _Mapping]] = ..., base_fee_msat: _Optional[int] = ..., fee_rate: _Optional[float] = ..., time_lock_delta: _Optional[int] = ..., max_htlc_msat: _Optional[int] = ..., min_htlc_msat: _Optional[int] = ..., min_htlc_msat_specified: _Optional[bool] = ..., fee_rate_ppm: _Optional[int] = ..., inbound_fee: _Optional[_Union[InboundFee, _Mapping]] = ..., create_missing_edge: _Optional[bool] = ..., **kwargs) -> None: ...

class OutPoint(_message.Message):
    __slots__ = ("txid_bytes", "txid_str", "output_index")
    TXID_BYTES_FIELD_NUMBER: _ClassVar[int]
    TXID_STR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    txid_bytes: bytes
    txid_str: str
    output_index: int
    def __init__(self, txid_bytes: _Optional[bytes] = ..., txid_str: _Optional[str] = ..., output_index: _Optional[int] = ...) -> None: ...

class FailedUpdate(_message.Message):
    __slots__ = ("outpoint", "reason", "update_error")
    OUTPOINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ERROR_FIELD_NUMBER: _ClassVar[int]
    outpoint: OutPoint
    reason: int
    update_error: str
    def __init__(self, outpoint: _Optional[_Union[OutPoint, _Mapping]] = ..., reason: _Optional[int] = ..., update_error: _Optional[str] = ...) -> None: ...

class PolicyUpdateResponse(_message.Message):
    __slots__ = ("failed_updates",)
    FAILED_UPDATES_FIELD_NUMBER: _ClassVar[int]
    failed_updates: _containers.RepeatedCompositeFieldContainer[FailedUpdate]
    def __init__(self, failed_updates: _Optional[_Iterable[_Union[FailedUpdate, _Mapping]]] = ...) -> None: ...

class MacaroonPermission(_message.Message):
    __slots__ = ("entity", "action")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    entity: str
    action: str
    def __init__(self, entity: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class CheckMacPermRequest(_message.Message):
    __slots__ = ("macaroon", "permissions", "fullMethod", "check_default_perms_from_full_method")
    MACAROON_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    FULLMETHOD_FIELD_NUMBER: _ClassVar[int]
    CHECK_DEFAULT_PERMS_FROM_FULL_METHOD_FIELD_NUMBER: _ClassVar[int]
    macaroon: bytes
    permissions: _containers.RepeatedCompositeFieldContainer[MacaroonPermission]
    fullMethod: str
    check_default_perms_from_full_method: bool
    def __init__(self, macaroon: _Optional[bytes] = ..., permissions: _Optional[_Iterable[_Union[MacaroonPermission, _Mapping]]] = ..., fullMethod: _Optional[str] = ..., check_default_perms_from_full_method: _Optional[bool] = ...) -> None: ...

class CheckMacPermResponse(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    def __init__(self, valid: _Optional[bool] = ...) -> None: ...

class NodeInfoRequest(_message.Message):
    __slots__ = ("pub_key", "include_channels")
    PUB_KEY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    pub_key: str
    include_channels: bool
    def __init__(self, pub_key: _Optional[str] = ..., include_channels: _Optional[bool] = ...) -> None: ...

class LightningNode(_message.Message):
    __slots__ = ("last_update", "pub_key", "alias")
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PUB_KEY_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    last_update: int
    pub_key: str
    alias: str
    def __init__(self, last_update: _Optional[int] = ..., pub_key: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node", "num_channels", "total_capacity")
    NODE_FIELD_NUMBER: _ClassVar[int]
    NUM_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    node: LightningNode
    num_channels: int
    total_capacity: int
    def __init__(self, node: _Optional[_Union[LightningNode, _Mapping]] = ..., num_channels: _Optional[int] = ..., total_capacity: _Optional[int] = ...) -> None: ...

class GetTransactionsRequest(_message.Message):
    __slots__ = ("start_height", "end_height", "account")
    START_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    END_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    start_height: int
    end_height: int
    account: str
    def __init__(self, start_height: _Optional[int] = ..., end_height: _Optional[int] = ..., account: _Optional[str] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("tx_hash", "amount", "num_confirmations", "block_hash", "block_height", "time_stamp", "total_fees", "label")
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NUM_CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_STAMP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FEES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    tx_hash: str
    amount: int
    num_confirmations: int
    block_hash: str
    block_height: int
    time_stamp: int
    total_fees: int
    label: str
    def __init__(self, tx_hash: _Optional[str] = ..., amount: _Optional[int] = ..., num_confirmations: _Optional[int] = ..., block_hash: _Optional[str] = ..., block_height: _Optional[int] = ..., time_stamp: _Optional[int] = ..., total_fees: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class TransactionDetails(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ...) -> None: ...
