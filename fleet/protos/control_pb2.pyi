from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetHealthRequest(_message.Message):
    __slots__ = ("service", "status")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    service: str
    status: str
    def __init__(self, service: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class SetCertificateRequest(_message.Message):
    __slots__ = ("cert_chain_pem", "private_key_pem")
    CERT_CHAIN_PEM_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    cert_chain_pem: bytes
    private_key_pem: bytes
    def __init__(self, cert_chain_pem: _Optional[bytes] = ..., private_key_pem: _Optional[bytes] = ...) -> None: ...

class AppFault(_message.Message):
    __slots__ = ("code", "fraction", "next_n", "delay_ms", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    NEXT_N_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: str
    fraction: float
    next_n: int
    delay_ms: int
    details: str
    def __init__(self, code: _Optional[str] = ..., fraction: _Optional[float] = ..., next_n: _Optional[int] = ..., delay_ms: _Optional[int] = ..., details: _Optional[str] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ("wait_ms", "grace_ms")
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    wait_ms: int
    grace_ms: int
    def __init__(self, wait_ms: _Optional[int] = ..., grace_ms: _Optional[int] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("calls", "by_code", "in_flight")
    class ByCodeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CALLS_FIELD_NUMBER: _ClassVar[int]
    BY_CODE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    calls: int
    by_code: _containers.ScalarMap[str, int]
    in_flight: int
    def __init__(self, calls: _Optional[int] = ..., by_code: _Optional[_Mapping[str, int]] = ..., in_flight: _Optional[int] = ...) -> None: ...
