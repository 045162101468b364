from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EstimateFeeRequest(_message.Message):
    __slots__ = ("conf_target",)
    CONF_TARGET_FIELD_NUMBER: _ClassVar[int]
    conf_target: int
    def __init__(self, conf_target: _Optional[int] = ...) -> None: ...

class EstimateFeeResponse(_message.Message):
    __slots__ = ("sat_per_kw", "min_relay_fee_sat_per_kw")
    SAT_PER_KW_FIELD_NUMBER: _ClassVar[int]
    MIN_RELAY_FEE_SAT_PER_KW_FIELD_NUMBER: _ClassVar[int]
    sat_per_kw: int
    min_relay_fee_sat_per_kw: int
    def __init__(self, sat_per_kw: _Optional[int] = ..., min_relay_fee_sat_per_kw: _Optional[int] = ...) -> None: ...
