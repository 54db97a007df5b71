"""The HTTP/2 fault point: a per-backend relay of HTTP/2 frames (TLS terminated and
re-originated, frames through golang.org/x/net/http2 in the compiled point process,
relay_go/, or h2 in Python's, relay.py — one control API) that injects the protocol events gRPC clients must
survive — GOAWAY, RST_STREAM, withheld PING ACKs, stream limits, flow-control starvation,
committed-then-silent responses, Trailers-Only answers — and records every GOAWAY and
connection it sees on the history's clock. docs/http2.md describes it.

``Http2Server`` starts the point process (the compiled one where its toolchain is,
control.choose_implementation); ``Http2Server.add_point`` gives an
``Http2Point`` (``target``, ``inject``, ``clear``, ``events``, ``close``); ``Http2Fault``
builds the faults.
"""

from .control import Http2Point, Http2PointError, Http2Server
from .faults import KINDS, Http2Fault

__all__ = ["KINDS", "Http2Fault", "Http2Point", "Http2PointError", "Http2Server"]
