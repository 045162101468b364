from . import lightning_pb2 as _lightning_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChanStatusAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENABLE: _ClassVar[ChanStatusAction]
    DISABLE: _ClassVar[ChanStatusAction]
    AUTO: _ClassVar[ChanStatusAction]
ENABLE: ChanStatusAction
DISABLE: ChanStatusAction
AUTO: ChanStatusAction

class UpdateChanStatusRequest(_message.Message):
    __slots__ = ("chan_point", "action")
    CHAN_POINT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    chan_point: _lightning_pb2.ChannelPoint
    action: ChanStatusAction
    def __init__(self, chan_point: _Optional[_Union[_lightning_pb2.ChannelPoint, _Mapping]] = ..., action: _Optional[_Union[ChanStatusAction, str]] = ...) -> None: ...

class UpdateChanStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubscribeHtlcEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HtlcInfo(_message.Message):
    __slots__ = ("incoming_timelock", "outgoing_timelock", "incoming_amt_msat", "outgoing_amt_msat")
    INCOMING_TIMELOCK_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_TIMELOCK_FIELD_NUMBER: _ClassVar[int]
    INCOMING_AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    incoming_timelock: int
    outgoing_timelock: int
    incoming_amt_msat: int
    outgoing_amt_msat: int
    def __init__(self, incoming_timelock: _Optional[int] = ..., outgoing_timelock: _Optional[int] = ..., incoming_amt_msat: _Optional[int] = ..., outgoing_amt_msat: _Optional[int] = ...) -> None: ...

class ForwardEvent(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: HtlcInfo
    def __init__(self, info: _Optional[_Union[HtlcInfo, _Mapping]] = ...) -> None: ...

class ForwardFailEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SettleEvent(_message.Message):
    __slots__ = ("preimage",)
    PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    preimage: bytes
    def __init__(self, preimage: _Optional[bytes] = ...) -> None: ...

class LinkFailEvent(_message.Message):
    __slots__ = ("info", "wire_failure", "failure_detail", "failure_string")
    INFO_FIELD_NUMBER: _ClassVar[int]
    WIRE_FAILURE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_STRING_FIELD_NUMBER: _ClassVar[int]
    info: HtlcInfo
    wire_failure: int
    failure_detail: int
    failure_string: str
    def __init__(self, info: _Optional[_Union[HtlcInfo, _Mapping]] = ..., wire_failure: _Optional[int] = ..., failure_detail: _Optional[int] = ..., failure_string: _Optional[str] = ...) -> None: ...

class SubscribedEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FinalHtlcEvent(_message.Message):
    __slots__ = ("settled", "offchain")
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    OFFCHAIN_FIELD_NUMBER: _ClassVar[int]
    settled: bool
    offchain: bool
    def __init__(self, settled: _Optional[bool] = ..., offchain: _Optional[bool] = ...) -> None: ...

class HtlcEvent(_message.Message):
    __slots__ = ("incoming_channel_id", "outgoing_channel_id", "incoming_htlc_id", "outgoing_htlc_id", "timestamp_ns", "event_type", "forward_event", "forward_fail_event", "settle_event", "link_fail_event", "subscribed_event", "final_htlc_event")
    INCOMING_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    INCOMING_HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_EVENT_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FAIL_EVENT_FIELD_NUMBER: _ClassVar[int]
    SETTLE_EVENT_FIELD_NUMBER: _ClassVar[int]
    LINK_FAIL_EVENT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_EVENT_FIELD_NUMBER: _ClassVar[int]
    FINAL_HTLC_EVENT_FIELD_NUMBER: _ClassVar[int]
    incoming_channel_id: int
    outgoing_channel_id: int
    incoming_htlc_id: int
    outgoing_htlc_id: int
    timestamp_ns: int
    event_type: int
    forward_event: ForwardEvent
    forward_fail_event: ForwardFailEvent
    settle_event: SettleEvent
    link_fail_event: LinkFailEvent
    subscribed_event: SubscribedEvent
    final_htlc_event: FinalHtlcEvent
    def __init__(self, incoming_channel_id: _Optional[int] = ..., outgoing_channel_id: _Optional[int] = ..., incoming_htlc_id: _Optional[int] = ..., outgoing_htlc_id: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., event_type: _Optional[int] = ..., forward_event: _Optional[_Union[ForwardEvent, _Mapping]] = ..., forward_fail_event: _Optional[_Union[ForwardFailEvent, _Mapping]] = ..., settle_event: _Optional[_Union[SettleEvent, _Mapping]] = ..., link_fail_event: _Optional[_Union[LinkFailEvent, _Mapping]] = ..., subscribed_event: _Optional[_Union[SubscribedEvent, _Mapping]] = ..., final_htlc_event: _Optional[_Union[FinalHtlcEvent, _Mapping]] = ...) -> None: ...
