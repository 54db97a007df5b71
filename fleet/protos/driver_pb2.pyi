from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ("protocol",)
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    protocol: int
    def __init__(self, protocol: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("protocol", "implementation", "version", "language", "settings", "options", "lb_policies", "retries", "health_check", "ignored_fields", "now_ns", "notes", "subchannels", "minimums")
    class MinimumsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LB_POLICIES_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_FIELD_NUMBER: _ClassVar[int]
    IGNORED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    NOW_NS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNELS_FIELD_NUMBER: _ClassVar[int]
    MINIMUMS_FIELD_NUMBER: _ClassVar[int]
    protocol: int
    implementation: str
    version: str
    language: str
    settings: _containers.RepeatedScalarFieldContainer[str]
    options: _containers.RepeatedScalarFieldContainer[str]
    lb_policies: _containers.RepeatedScalarFieldContainer[str]
    retries: bool
    health_check: bool
    ignored_fields: _containers.RepeatedScalarFieldContainer[str]
    now_ns: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    subchannels: bool
    minimums: _containers.ScalarMap[str, int]
    def __init__(self, protocol: _Optional[int] = ..., implementation: _Optional[str] = ..., version: _Optional[str] = ..., language: _Optional[str] = ..., settings: _Optional[_Iterable[str]] = ..., options: _Optional[_Iterable[str]] = ..., lb_policies: _Optional[_Iterable[str]] = ..., retries: _Optional[bool] = ..., health_check: _Optional[bool] = ..., ignored_fields: _Optional[_Iterable[str]] = ..., now_ns: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ..., subchannels: _Optional[bool] = ..., minimums: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("keepalive_time_ms", "keepalive_timeout_ms", "keepalive_without_calls", "initial_reconnect_backoff_ms", "max_reconnect_backoff_ms", "min_connect_timeout_ms", "dns_min_resolution_interval_ms", "max_receive_message_bytes", "max_send_message_bytes", "retries")
    KEEPALIVE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_WITHOUT_CALLS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_RECONNECT_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECONNECT_BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_CONNECT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DNS_MIN_RESOLUTION_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECEIVE_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SEND_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    keepalive_time_ms: int
    keepalive_timeout_ms: int
    keepalive_without_calls: bool
    initial_reconnect_backoff_ms: int
    max_reconnect_backoff_ms: int
    min_connect_timeout_ms: int
    dns_min_resolution_interval_ms: int
    max_receive_message_bytes: int
    max_send_message_bytes: int
    retries: bool
    def __init__(self, keepalive_time_ms: _Optional[int] = ..., keepalive_timeout_ms: _Optional[int] = ..., keepalive_without_calls: _Optional[bool] = ..., initial_reconnect_backoff_ms: _Optional[int] = ..., max_reconnect_backoff_ms: _Optional[int] = ..., min_connect_timeout_ms: _Optional[int] = ..., dns_min_resolution_interval_ms: _Optional[int] = ..., max_receive_message_bytes: _Optional[int] = ..., max_send_message_bytes: _Optional[int] = ..., retries: _Optional[bool] = ...) -> None: ...

class ChannelConfig(_message.Message):
    __slots__ = ("target", "ca_file", "cert_file", "key_file", "service_config_json", "settings", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CA_FILE_FIELD_NUMBER: _ClassVar[int]
    CERT_FILE_FIELD_NUMBER: _ClassVar[int]
    KEY_FILE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    target: str
    ca_file: str
    cert_file: str
    key_file: str
    service_config_json: str
    settings: Settings
    options: _containers.ScalarMap[str, str]
    def __init__(self, target: _Optional[str] = ..., ca_file: _Optional[str] = ..., cert_file: _Optional[str] = ..., key_file: _Optional[str] = ..., service_config_json: _Optional[str] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ChannelRef(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class Closed(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Subchannel(_message.Message):
    __slots__ = ("address", "calls_started", "calls_succeeded", "calls_failed", "state", "sockets")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CALLS_STARTED_FIELD_NUMBER: _ClassVar[int]
    CALLS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    CALLS_FAILED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOCKETS_FIELD_NUMBER: _ClassVar[int]
    address: str
    calls_started: int
    calls_succeeded: int
    calls_failed: int
    state: str
    sockets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, address: _Optional[str] = ..., calls_started: _Optional[int] = ..., calls_succeeded: _Optional[int] = ..., calls_failed: _Optional[int] = ..., state: _Optional[str] = ..., sockets: _Optional[_Iterable[int]] = ...) -> None: ...

class SubchannelList(_message.Message):
    __slots__ = ("now_ns", "subchannels")
    NOW_NS_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNELS_FIELD_NUMBER: _ClassVar[int]
    now_ns: int
    subchannels: _containers.RepeatedCompositeFieldContainer[Subchannel]
    def __init__(self, now_ns: _Optional[int] = ..., subchannels: _Optional[_Iterable[_Union[Subchannel, _Mapping]]] = ...) -> None: ...

class CallRequest(_message.Message):
    __slots__ = ("channel", "method", "request", "deadline_ms", "identity_key")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    channel: int
    method: str
    request: bytes
    deadline_ms: int
    identity_key: str
    def __init__(self, channel: _Optional[int] = ..., method: _Optional[str] = ..., request: _Optional[bytes] = ..., deadline_ms: _Optional[int] = ..., identity_key: _Optional[str] = ...) -> None: ...

class RpcRecord(_message.Message):
    __slots__ = ("start_ns", "end_ns", "code", "message", "backend", "headers_ns", "response", "request_index", "attempts", "seq")
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    HEADERS_NS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    start_ns: int
    end_ns: int
    code: str
    message: str
    backend: str
    headers_ns: int
    response: bytes
    request_index: int
    attempts: int
    seq: int
    def __init__(self, start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., backend: _Optional[str] = ..., headers_ns: _Optional[int] = ..., response: _Optional[bytes] = ..., request_index: _Optional[int] = ..., attempts: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class RecordBatch(_message.Message):
    __slots__ = ("records", "sent_ns", "in_flight_since_ns")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SENT_NS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[RpcRecord]
    sent_ns: int
    in_flight_since_ns: int
    def __init__(self, records: _Optional[_Iterable[_Union[RpcRecord, _Mapping]]] = ..., sent_ns: _Optional[int] = ..., in_flight_since_ns: _Optional[int] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("start_ns", "end_ns")
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    start_ns: int
    end_ns: int
    def __init__(self, start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ...) -> None: ...

class LoadSpec(_message.Message):
    __slots__ = ("channel", "method", "requests", "deadline_ms", "identity_key", "concurrency", "rate", "max_in_flight", "failure_pause_us", "idle")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_PAUSE_US_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    channel: int
    method: str
    requests: _containers.RepeatedScalarFieldContainer[bytes]
    deadline_ms: int
    identity_key: str
    concurrency: int
    rate: float
    max_in_flight: int
    failure_pause_us: int
    idle: _containers.RepeatedCompositeFieldContainer[Gap]
    def __init__(self, channel: _Optional[int] = ..., method: _Optional[str] = ..., requests: _Optional[_Iterable[bytes]] = ..., deadline_ms: _Optional[int] = ..., identity_key: _Optional[str] = ..., concurrency: _Optional[int] = ..., rate: _Optional[float] = ..., max_in_flight: _Optional[int] = ..., failure_pause_us: _Optional[int] = ..., idle: _Optional[_Iterable[_Union[Gap, _Mapping]]] = ...) -> None: ...

class IdleGaps(_message.Message):
    __slots__ = ("load", "idle")
    LOAD_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    load: int
    idle: _containers.RepeatedCompositeFieldContainer[Gap]
    def __init__(self, load: _Optional[int] = ..., idle: _Optional[_Iterable[_Union[Gap, _Mapping]]] = ...) -> None: ...

class LoadRef(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class LoadSummary(_message.Message):
    __slots__ = ("completed", "skipped")
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    completed: int
    skipped: int
    def __init__(self, completed: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...
