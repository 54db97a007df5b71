package main

// The faults a point injects, as chaos/http2/faults.py defines them: the same kinds, the
// same parameters, the same checks and messages (the caller's process checks them too;
// this side checks again, for callers that speak the control API directly).

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
)

const (
	kindGoaway            = "goaway"
	kindGoawayBelow       = "goaway_below_in_flight"
	kindTooManyPings      = "too_many_pings"
	kindRstStream         = "rst_stream"
	kindWithholdPingAcks  = "withhold_ping_acks"
	kindMaxStreams        = "max_concurrent_streams"
	kindStarveFlowControl = "starve_flow_control"
	kindHeadersThenNone   = "headers_then_nothing"
	kindTrailersOnly      = "trailers_only"

	defaultGraceMs = 1000
	maxGraceMs     = 600000
	maxSetting     = 1<<31 - 1
)

var kinds = []string{
	kindGoaway, kindGoawayBelow, kindTooManyPings, kindRstStream, kindHeadersThenNone,
	kindTrailersOnly, kindWithholdPingAcks, kindMaxStreams, kindStarveFlowControl,
}

func oneShot(kind string) bool {
	return kind == kindGoaway || kind == kindGoawayBelow || kind == kindTooManyPings
}

func perStream(kind string) bool {
	return kind == kindRstStream || kind == kindHeadersThenNone || kind == kindTrailersOnly
}

// Which parameters each kind takes besides "kind".
var parameters = map[string][]string{
	kindGoaway:            {"code", "grace_ms", "debug"},
	kindGoawayBelow:       {"code", "grace_ms", "last_stream_id", "debug"},
	kindTooManyPings:      {"grace_ms"},
	kindRstStream:         {"code", "count"},
	kindWithholdPingAcks:  {},
	kindMaxStreams:        {"value"},
	kindStarveFlowControl: {},
	kindHeadersThenNone:   {"count"},
	kindTrailersOnly:      {"status", "message", "count"},
}

var allParameters = []string{
	"code", "count", "grace_ms", "last_stream_id", "value", "status", "message", "debug",
}

// HTTP/2 error codes by name, in code order (RFC 9113 section 7).
var errorNames = []string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
	"CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

// gRPC status codes by name (chaos/history.py STATUS_CODES).
var statusNames = []string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// codeName is an error code's name, or its number when it has none (a peer may send any).
func codeName(code http2.ErrCode) interface{} {
	if int(code) < len(errorNames) {
		return errorNames[code]
	}
	return uint32(code)
}

// fault is one validated fault (chaos/http2/faults.py Http2Fault).
type fault struct {
	Kind         string
	Code         string
	Count        *int64
	GraceMs      int64
	LastStreamID *int64
	Value        int64
	Status       int64
	Message      string
	Debug        string
}

func (f *fault) errCode() http2.ErrCode {
	for n, name := range errorNames {
		if name == f.Code {
			return http2.ErrCode(n)
		}
	}
	return http2.ErrCodeNo
}

// valueError is bad input: answered as a ValueError naming it.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

func badInput(format string, args ...interface{}) error {
	return &valueError{fmt.Sprintf(format, args...)}
}

// pyRepr renders a JSON value roughly as Python's repr would, for messages that must read
// as the caller's process words them.
func pyRepr(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "\\'") + "'"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return x.String()
	default:
		out, _ := json.Marshal(x)
		return string(out)
	}
}

func parseErrorCode(v interface{}) (string, error) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil || n < 0 || n >= int64(len(errorNames)) {
			return "", badInput("unknown HTTP/2 error code %s", pyRepr(v))
		}
		return errorNames[n], nil
	case string:
		upper := strings.ToUpper(x)
		for _, name := range errorNames {
			if name == upper {
				return name, nil
			}
		}
		return "", badInput("unknown HTTP/2 error code %s (known: %s)", pyRepr(v), strings.Join(errorNames, ", "))
	}
	return "", badInput("unknown HTTP/2 error code %s", pyRepr(v))
}

func parseStatus(v interface{}) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil || n < 0 || n > 16 {
			return 0, badInput("unknown gRPC status %s (0..16)", pyRepr(v))
		}
		return n, nil
	case string:
		name := strings.TrimPrefix(strings.ToUpper(x), "STATUSCODE.")
		for n, known := range statusNames {
			if known == name {
				return int64(n), nil
			}
		}
		return 0, badInput("unknown gRPC status %s (known: %s)", pyRepr(v), strings.Join(statusNames, ", "))
	}
	return 0, badInput("unknown gRPC status %s", pyRepr(v))
}

func intParam(name string, v interface{}) (int64, error) {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
	}
	return 0, badInput("%s must be an integer, got %s", name, pyRepr(v))
}

func strParam(name string, v interface{}) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", badInput("%s must be a string, got %s", name, pyRepr(v))
}

// parseFault checks a fault's JSON form as Http2Fault.from_json does.
func parseFault(data interface{}) (*fault, error) {
	object, ok := data.(map[string]interface{})
	if !ok {
		return nil, badInput("an HTTP/2 fault is an object, got %s", pyRepr(data))
	}
	var unknown []string
	for key := range object {
		if key != "kind" && !contains(allParameters, key) {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, badInput("unknown HTTP/2 fault parameter(s): %s", strings.Join(unknown, ", "))
	}
	rawKind, ok := object["kind"]
	if !ok {
		return nil, badInput("an HTTP/2 fault needs a 'kind'")
	}
	kind, _ := rawKind.(string)
	if !contains(kinds, kind) {
		return nil, badInput("unknown HTTP/2 fault kind %s (known: %s)", pyRepr(rawKind), strings.Join(kinds, ", "))
	}
	f := &fault{Kind: kind, GraceMs: defaultGraceMs, Status: 14}
	for _, name := range allParameters {
		v, given := object[name]
		if !given || isDefault(name, v) {
			continue
		}
		if !contains(parameters[kind], name) {
			return nil, badInput("HTTP/2 fault %s takes no %s (got %s)", pyRepr(kind), pyRepr(name), pyRepr(v))
		}
		var err error
		switch name {
		case "code":
			f.Code, err = parseErrorCode(v)
		case "count":
			var n int64
			if n, err = intParam(name, v); err == nil {
				if n < 1 {
					err = badInput("HTTP/2 fault count must be a positive integer, got %d", n)
				}
				f.Count = &n
			}
		case "grace_ms":
			f.GraceMs, err = intParam(name, v)
		case "last_stream_id":
			var n int64
			if n, err = intParam(name, v); err == nil {
				f.LastStreamID = &n
			}
		case "value":
			f.Value, err = intParam(name, v)
		case "status":
			f.Status, err = parseStatus(v)
		case "message":
			f.Message, err = strParam(name, v)
		case "debug":
			f.Debug, err = strParam(name, v)
		}
		if err != nil {
			return nil, err
		}
	}
	if kind == kindGoaway || kind == kindGoawayBelow {
		if f.Code == "" {
			f.Code = "NO_ERROR"
		}
	}
	if kind == kindRstStream && f.Code == "" {
		return nil, badInput("HTTP/2 fault 'rst_stream' needs a code (e.g. REFUSED_STREAM)")
	}
	if f.GraceMs < 0 || f.GraceMs > maxGraceMs {
		return nil, badInput("grace_ms must be within 0..%d, got %d", maxGraceMs, f.GraceMs)
	}
	if f.LastStreamID != nil && (*f.LastStreamID < 0 || *f.LastStreamID > maxSetting) {
		return nil, badInput("last_stream_id must be within 0..2^31-1, got %d", *f.LastStreamID)
	}
	if f.Value < 0 || f.Value > maxSetting {
		return nil, badInput("value must be within 0..2^31-1, got %d", f.Value)
	}
	return f, nil
}

func isDefault(name string, v interface{}) bool {
	switch name {
	case "code", "message", "debug":
		return v == ""
	case "count", "last_stream_id":
		return v == nil
	case "grace_ms":
		return numberIs(v, defaultGraceMs)
	case "value":
		return numberIs(v, 0)
	case "status":
		return numberIs(v, 14)
	}
	return false
}

func numberIs(v interface{}, want int64) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	i, err := n.Int64()
	return err == nil && i == want
}

// toJSON is the fault's wire form: its kind and the parameters not at their defaults.
func (f *fault) toJSON() map[string]interface{} {
	out := map[string]interface{}{"kind": f.Kind}
	if f.Code != "" {
		out["code"] = f.Code
	}
	if f.Count != nil {
		out["count"] = *f.Count
	}
	if f.GraceMs != defaultGraceMs {
		out["grace_ms"] = f.GraceMs
	}
	if f.LastStreamID != nil {
		out["last_stream_id"] = *f.LastStreamID
	}
	if f.Value != 0 {
		out["value"] = f.Value
	}
	if f.Status != 14 {
		out["status"] = f.Status
	}
	if f.Message != "" {
		out["message"] = f.Message
	}
	if f.Debug != "" {
		out["debug"] = f.Debug
	}
	return out
}

// trailersOnly is a gRPC Trailers-Only response: one HEADERS frame with the status.
func trailersOnly(status int64, message string) []headerField {
	fields := []headerField{
		{":status", "200", false},
		{"content-type", "application/grpc", false},
		{"grpc-status", strconv.FormatInt(status, 10), false},
	}
	if message != "" {
		fields = append(fields, headerField{"grpc-message", percentEncode(message), false})
	}
	return fields
}

// percentEncode is gRPC's grpc-message encoding: printable ASCII but '%' stays as is.
func percentEncode(message string) string {
	var b strings.Builder
	for _, c := range []byte(message) {
		if c >= 0x20 && c < 0x7f && c != '%' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)|0x100, 16)[1:]))
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
