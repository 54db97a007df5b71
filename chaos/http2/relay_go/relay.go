package main

// One relayed connection: a client's TLS connection to the point, paired with one TLS
// connection of the point's to the backend, HTTP/2 frames passed both ways. The mapping is
// chaos/http2/relay.py's (docs/http2.md says why):
//
//   - streams 1:1 (a client stream N is stream N upstream); a stream the point answers
//     itself (a fault) is skipped upstream;
//   - flow control end to end: received DATA is credited back to its sender only once it
//     was handed to the other hop within that hop's window;
//   - PINGs end to end, and their ACKs back;
//   - GOAWAYs recorded and passed on; the backend's MAX_CONCURRENT_STREAMS advertised to
//     the client unless a fault overrides it;
//   - either end closing closes the other.
//
// A reader goroutine per hop parses frames; everything they do, and every call from the
// point, runs under the relay's lock (the lock order is relay, then point).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

const (
	connectTimeout = 20 * time.Second // gRPC's own minimum connect timeout
	closeTimeout   = 2 * time.Second  // to hand what is written to the kernel
	rpcTag         = "x-chaos-rpc"    // chaos/history.py RPC_TAG
)

type direction struct {
	buffer      []byte
	end         bool // END_STREAM received: send it once the buffer is out
	hasTrailers bool
	trailers    []headerField
	done        bool  // the end has been sent
	owed        int64 // stream credit owed to this direction's sender
}

type stream struct {
	sid       uint32
	mute      bool   // headers_then_nothing: nothing after the response headers
	rpc       string // the client's RPC tag: its RPC's id in the history
	openedNs  int64
	headersNs int64 // response headers passed on (committed); 0 when not
	responded bool  // the (final) response headers came
	up, down  direction
	sendUp    int64 // what the backend lets us send on it
	sendDown  int64 // what the client lets us send on it
	withheld  int64 // response bytes not credited to the backend (starvation)
	starved   bool
}

type relay struct {
	point *point
	id    int64
	peer  string

	mu            sync.Mutex
	down, up      *hop
	streams       map[uint32]*stream
	highest       uint32
	goawayLast    int64 // the last-stream-id of a GOAWAY sent to the client; -1: none
	backendMax    uint32
	advertisedMax uint32
	settingsSent  int
	settingsAcked int
	ackSignal     chan struct{} // closed (and replaced) at each SETTINGS ACK
	grace         *time.Timer

	nstreams    int32       // len(streams), read by the point without the lock
	ready       atomic.Bool // both hops up: the point may act on it
	closing     atomic.Bool
	stop        chan struct{}
	stopOnce    sync.Once
	closeReason string
}

type ended struct {
	by, reason string
}

func newRelay(p *point, id int64, peer string) *relay {
	return &relay{
		point:      p,
		id:         id,
		peer:       peer,
		streams:    map[uint32]*stream{},
		goawayLast: -1,
		backendMax: unlimitedStreams,
		ackSignal:  make(chan struct{}),
		stop:       make(chan struct{}),
	}
}

// run connects upstream, relays until either side ends, and closes both. Never panics on
// a peer's input.
func (r *relay) run(downConn *tls.Conn) {
	upConn, err := r.dial()
	if err != nil {
		r.point.record("close", kv{"conn", r.id}, kv{"by", "server"},
			kv{"reason", "backend unreachable: " + err.Error()})
		downConn.NetConn().Close()
		return
	}
	r.mu.Lock()
	r.down, r.up = newHop(downConn), newHop(upConn)
	r.up.start(true,
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
		// No MAX_CONCURRENT_STREAMS toward the backend: ENABLE_PUSH 0 already forbids it
		// to open streams.
	)
	r.advertisedMax = r.point.advertisedMaxStreams(r.backendMax)
	r.down.start(false,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: r.advertisedMax},
	)
	r.settingsSent = 1
	r.point.record("open", kv{"conn", r.id}, kv{"peer", r.peer})
	r.flush()
	r.mu.Unlock()
	r.ready.Store(true)

	// Each of the four goroutines reports once, at most, when it stops on its own.
	results := make(chan ended, 4)
	go r.read(r.down, true, results)
	go r.read(r.up, false, results)
	go r.write(r.down, "client", results)
	go r.write(r.up, "server", results)
	var end ended
	select {
	case end = <-results:
	case <-r.stop:
		end = ended{"point", r.closeReason}
	}
	r.shutdown(end)
}

func (r *relay) dial() (*tls.Conn, error) {
	r.point.mu.Lock()
	address, config := r.point.upstream, r.point.upstreamTLS
	r.point.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	go func() { // the point closing ends the attempt
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	dialer := tls.Dialer{Config: config}
	conn, err := dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	tlsConn := conn.(*tls.Conn)
	if tlsConn.ConnectionState().NegotiatedProtocol != "h2" {
		tlsConn.NetConn().Close()
		return nil, errors.New("the backend did not negotiate ALPN h2")
	}
	return tlsConn, nil
}

// close ends both connections now (from the point).
func (r *relay) close(reason string) {
	r.stopOnce.Do(func() {
		r.closeReason = reason
		close(r.stop)
	})
}

func (r *relay) shutdown(end ended) {
	r.closing.Store(true)
	r.mu.Lock()
	for _, s := range r.streams {
		r.lost(s, fmt.Sprintf("connection closed by the %s: %s", end.by, end.reason))
	}
	if r.grace != nil {
		r.grace.Stop()
	}
	r.stopOnce.Do(func() { close(r.stop) }) // the writers stop
	r.mu.Unlock()
	// A last GOAWAY or answer: out to the kernel if it can be within closeTimeout (a
	// write in progress gets that deadline too). No TLS close_notify: a gRPC peer never
	// answers one, and HTTP/2 frames its own ends.
	for _, h := range []*hop{r.down, r.up} {
		h.conn.SetWriteDeadline(time.Now().Add(closeTimeout))
		h.wmu.Lock()
		r.mu.Lock()
		data := h.take()
		r.mu.Unlock()
		h.send(data, closeTimeout)
		h.wmu.Unlock()
	}
	r.down.conn.NetConn().Close()
	r.up.conn.NetConn().Close()
	r.point.record("close", kv{"conn", r.id}, kv{"by", end.by}, kv{"reason", end.reason})
}

func (r *relay) read(h *hop, fromClient bool, results chan<- ended) {
	who := "server"
	if fromClient {
		who = "client"
	}
	if fromClient {
		preface := make([]byte, len(clientPreface))
		if _, err := io.ReadFull(h.reader, preface); err != nil {
			results <- ended{who, readError(err)}
			return
		}
		if string(preface) != string(clientPreface) {
			results <- ended{who, "ProtocolError: invalid HTTP/2 preamble"}
			return
		}
	}
	for {
		frame, err := h.framer.ReadFrame()
		r.mu.Lock()
		if r.closing.Load() {
			r.mu.Unlock()
			results <- ended{who, "closed"}
			return
		}
		if err != nil {
			var streamErr http2.StreamError
			if errors.As(err, &streamErr) {
				r.drop(streamErr.StreamID, http2.ErrCodeInternal, true)
				r.flush()
				r.mu.Unlock()
				continue
			}
			var connErr http2.ConnectionError
			if errors.As(err, &connErr) {
				h.goaway(r.highestFrom(fromClient), http2.ErrCode(connErr), nil)
			}
			r.mu.Unlock()
			results <- ended{who, readError(err)}
			return
		}
		if fromClient {
			err = r.onClientFrame(frame)
		} else {
			err = r.onBackendFrame(frame)
		}
		if err == nil && h.reader.Buffered() == 0 {
			r.flush() // nothing more read yet: what this read caused goes out
		}
		r.mu.Unlock()
		if err != nil {
			results <- ended{who, err.Error()}
			return
		}
	}
}

// write sends what the readers (and the point) wrote to h, in the order written, until
// the relay stops; a write that fails ends the relay.
func (r *relay) write(h *hop, who string, results chan<- ended) {
	for {
		select {
		case <-h.wake:
		case <-r.stop:
			return
		}
		h.wmu.Lock()
		r.mu.Lock()
		data := h.take()
		r.mu.Unlock()
		err := h.send(data, writeTimeout)
		h.wmu.Unlock()
		if err != nil {
			results <- ended{who, fmt.Sprintf("writing to the %s: %v", who, err)}
			return
		}
	}
}

func (r *relay) highestFrom(fromClient bool) uint32 {
	if fromClient {
		return r.highest
	}
	return 0
}

func readError(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return "connection closed"
	}
	return fmt.Sprintf("%T: %v", err, err)
}

// flush hands what both hops have buffered to their writers.
func (r *relay) flush() {
	r.down.flush()
	r.up.flush()
}

// ---------------------------------------------------------------- the client's frames

func (r *relay) onClientFrame(frame http2.Frame) error {
	switch f := frame.(type) {
	case *http2.MetaHeadersFrame:
		sid := f.StreamID
		if s := r.streams[sid]; s != nil {
			r.end(s, true, fields(f))
		} else if sid > r.highest {
			r.open(sid, fields(f), f.StreamEnded())
		}
	case *http2.DataFrame:
		r.data(f, true)
	case *http2.RSTStreamFrame:
		if s := r.streams[f.StreamID]; s != nil {
			r.remove(s)
			r.up.reset(f.StreamID, f.ErrCode)
		}
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			r.down.sendConn += int64(f.Increment)
			r.pumpAll(false)
		} else if s := r.streams[f.StreamID]; s != nil {
			s.sendDown += int64(f.Increment)
			r.pump(s, false)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			r.point.count("client_pings")
		}
		r.up.ping(f.IsAck(), f.Data)
	case *http2.SettingsFrame:
		if f.IsAck() {
			r.settingsAcked++
			close(r.ackSignal)
			r.ackSignal = make(chan struct{})
			return nil
		}
		delta, _, err := r.down.applySettings(f)
		if err != nil {
			return err
		}
		for _, s := range r.streams {
			s.sendDown += delta
		}
		r.pumpAll(false)
	case *http2.GoAwayFrame:
		r.goawayEvent("client", f)
		r.up.goaway(f.LastStreamID, f.ErrCode, f.DebugData())
	}
	return nil
}

func fields(f *http2.MetaHeadersFrame) []headerField {
	out := make([]headerField, len(f.Fields))
	for n, field := range f.Fields {
		out[n] = headerField{field.Name, field.Value, field.Sensitive}
	}
	return out
}

func (r *relay) open(sid uint32, headers []headerField, endStream bool) {
	r.highest = sid
	if r.goawayLast >= 0 && int64(sid) > r.goawayLast {
		// After a GOAWAY: never processed, the client may retry it.
		r.down.reset(sid, http2.ErrCodeRefusedStream)
		return
	}
	f := r.point.takeStreamFault()
	if f != nil && f.Kind == kindRstStream {
		r.down.reset(sid, f.errCode())
		return
	}
	if f != nil && f.Kind == kindTrailersOnly {
		r.down.headers(sid, trailersOnly(f.Status, f.Message), true)
		return
	}
	rpc := ""
	for n := range headers {
		if headers[n].name == rpcTag {
			// Every RPC's tag is new: indexed, it would fill the backend hop's HPACK table
			// with entries used once.
			headers[n].sensitive = true
			rpc = headers[n].value
			break
		}
	}
	if uint32(len(r.streams)) >= r.backendMax {
		r.down.reset(sid, http2.ErrCodeRefusedStream) // the backend's own stream limit
		return
	}
	r.up.headers(sid, headers, endStream)
	s := &stream{
		sid:      sid,
		mute:     f != nil && f.Kind == kindHeadersThenNone,
		rpc:      rpc,
		openedNs: nowNs(),
		sendUp:   r.up.initialWindow,
		sendDown: r.down.initialWindow,
	}
	s.up.done = endStream
	r.streams[sid] = s
	atomic.StoreInt32(&r.nstreams, int32(len(r.streams)))
	r.point.streamOpened(len(r.streams))
}

// ---------------------------------------------------------------- the backend's frames

func (r *relay) onBackendFrame(frame http2.Frame) error {
	switch f := frame.(type) {
	case *http2.MetaHeadersFrame:
		s := r.streams[f.StreamID]
		if s == nil {
			return nil
		}
		if s.responded {
			r.end(s, false, fields(f))
			return nil
		}
		status := f.PseudoValue("status")
		informational := len(status) == 3 && status[0] == '1'
		endStream := f.StreamEnded() && !s.mute
		r.down.headers(f.StreamID, fields(f), endStream)
		if informational {
			return nil
		}
		s.responded = true
		if !endStream {
			s.headersNs = nowNs()
			r.point.count("responses_committed")
		}
		if endStream {
			s.down.done, s.down.end = true, true
			r.forget(s)
		} else if s.mute {
			r.point.count("responses_muted")
		}
	case *http2.DataFrame:
		r.data(f, false)
	case *http2.RSTStreamFrame:
		if s := r.streams[f.StreamID]; s != nil {
			r.remove(s)
			r.down.reset(f.StreamID, f.ErrCode)
			r.lost(s, fmt.Sprintf("reset by the server (%v)", codeName(f.ErrCode)))
		}
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			r.up.sendConn += int64(f.Increment)
			r.pumpAll(true)
		} else if s := r.streams[f.StreamID]; s != nil {
			s.sendUp += int64(f.Increment)
			r.pump(s, true)
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		delta, maxStreams, err := r.up.applySettings(f)
		if err != nil {
			return err
		}
		for _, s := range r.streams {
			s.sendUp += delta
		}
		if maxStreams != nil {
			r.backendMax = *maxStreams
			r.updateMaxStreamsLocked()
		}
		r.pumpAll(true)
	case *http2.PingFrame:
		if !f.IsAck() {
			r.down.ping(false, f.Data)
		} else if r.point.withholding.Load() {
			r.point.count("ping_acks_withheld")
		} else {
			r.point.count("ping_acks_passed")
			r.down.ping(true, f.Data)
		}
	case *http2.GoAwayFrame:
		r.goawayEvent("server", f)
		last := f.LastStreamID
		r.down.goaway(last, f.ErrCode, f.DebugData())
		if r.goawayLast < 0 || int64(last) < r.goawayLast {
			r.goawayLast = int64(last)
		}
		// Streams above it were never processed: the client retries them on its own.
		for sid, s := range r.streams {
			if sid > last {
				r.remove(s)
			}
		}
		if f.ErrCode != http2.ErrCodeNo { // an error GOAWAY ends every stream at once
			for _, s := range r.streams {
				r.lost(s, fmt.Sprintf("GOAWAY %v from the server", codeName(f.ErrCode)))
				s.headersNs = 0 // reported once
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------- data and ends

func (r *relay) data(f *http2.DataFrame, upward bool) {
	src := r.up
	if upward {
		src = r.down
	}
	payload := f.Data()
	s := r.streams[f.StreamID]
	if padding := int64(f.Length) - int64(len(payload)); padding > 0 {
		r.credit(src, s, upward, padding)
	}
	if s == nil || (!upward && s.mute) {
		r.credit(src, s, upward, int64(len(payload))) // nobody will read it
		return
	}
	dir := &s.down
	if upward {
		dir = &s.up
	}
	dir.buffer = append(dir.buffer, payload...)
	if f.StreamEnded() && !dir.done && !dir.end {
		dir.end = true
	}
	r.pump(s, upward)
}

// credit gives n bytes received from src back to it: on the connection, and on the
// stream while its sender may still send on it.
func (r *relay) credit(src *hop, s *stream, upward bool, n int64) {
	if n <= 0 {
		return
	}
	src.credit(n)
	if s == nil {
		return
	}
	dir := &s.down
	if upward {
		dir = &s.up
	}
	if dir.end || dir.done {
		return
	}
	dir.owed += n
	if dir.owed >= streamWindow/4 {
		src.framer.WriteWindowUpdate(s.sid, uint32(dir.owed))
		dir.owed = 0
	}
}

// end: the sender ended its side of the stream with trailers.
func (r *relay) end(s *stream, upward bool, trailers []headerField) {
	if !upward && s.mute {
		return
	}
	dir := &s.down
	if upward {
		dir = &s.up
	}
	if dir.done || dir.end {
		return // already ended with its headers
	}
	dir.end, dir.hasTrailers, dir.trailers = true, true, trailers
	r.pump(s, upward)
}

// pump sends what waits in one direction of a stream, within the receiver's windows.
func (r *relay) pump(s *stream, upward bool) {
	src, dst, dir, window := r.up, r.down, &s.down, &s.sendDown
	if upward {
		src, dst, dir, window = r.down, r.up, &s.up, &s.sendUp
	}
	for len(dir.buffer) > 0 {
		size := int64(len(dir.buffer))
		if dst.sendConn < size {
			size = dst.sendConn
		}
		if *window < size {
			size = *window
		}
		if int64(dst.maxFrame) < size {
			size = int64(dst.maxFrame)
		}
		if size <= 0 {
			return // the receiver's window is shut: a WINDOW_UPDATE resumes
		}
		last := dir.end && !dir.hasTrailers && size == int64(len(dir.buffer))
		dst.data(s.sid, dir.buffer[:size], last)
		dir.buffer = dir.buffer[size:]
		dst.sendConn -= size
		*window -= size
		if !upward && r.point.starving.Load() {
			s.withheld += size // no credit to the backend
			if s.withheld >= streamWindow && !s.starved {
				s.starved = true // the backend has no credit left on it
				r.point.count("responses_starved")
			}
		} else {
			r.credit(src, s, upward, size)
		}
		if last {
			dir.done = true
			dir.buffer = nil
			r.forget(s)
			return
		}
	}
	dir.buffer = nil
	if dir.end && !dir.done {
		dir.done = true
		if dir.hasTrailers {
			dst.headers(s.sid, dir.trailers, true)
		} else {
			dst.data(s.sid, nil, true)
		}
		r.forget(s)
	}
}

func (r *relay) pumpAll(upward bool) {
	for _, s := range r.streams {
		if !upward && s.mute {
			continue
		}
		r.pump(s, upward)
	}
}

// releaseWithheld: the starvation ended; credit what was held back.
func (r *relay) releaseWithheld() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ready.Load() || r.closing.Load() {
		return
	}
	for _, s := range r.streams {
		if s.withheld > 0 {
			held := s.withheld
			s.withheld = 0
			r.credit(r.up, s, false, held)
			if s.down.owed > 0 { // the backend may be stalled on it: credit it now
				r.up.framer.WriteWindowUpdate(s.sid, uint32(s.down.owed))
				s.down.owed = 0
			}
		}
	}
	if r.up.owedConn > 0 { // and the connection's, which it may be short of too
		r.up.framer.WriteWindowUpdate(0, uint32(r.up.owedConn))
		r.up.owedConn = 0
	}
	r.flush()
}

// forget drops a stream both of whose ends were sent.
func (r *relay) forget(s *stream) {
	if s.up.done && s.down.done {
		r.remove(s)
	}
}

// remove drops a stream and gives back the connection window of bytes nobody will send.
func (r *relay) remove(s *stream) {
	delete(r.streams, s.sid)
	atomic.StoreInt32(&r.nstreams, int32(len(r.streams)))
	if n := len(s.up.buffer); n > 0 {
		r.down.credit(int64(n))
		s.up.buffer = nil
	}
	if held := int64(len(s.down.buffer)) + s.withheld; held > 0 {
		r.up.credit(held)
		s.down.buffer = nil
		s.withheld = 0
	}
}

// drop ends a stream on both hops: reset toward the client with code (when resetDown),
// cancelled toward the backend.
func (r *relay) drop(sid uint32, code http2.ErrCode, resetDown bool) {
	s := r.streams[sid]
	if s == nil {
		return
	}
	r.remove(s)
	if resetDown {
		r.down.reset(sid, code)
	}
	r.up.reset(sid, http2.ErrCodeCancel)
}

// lost records a committed RPC lost: response headers reached the client, the trailers
// never will (only for an RPC the client tagged).
func (r *relay) lost(s *stream, why string) {
	if s.headersNs == 0 || s.rpc == "" || s.down.done {
		return
	}
	r.point.record("committed", kv{"conn", r.id}, kv{"stream", s.sid}, kv{"rpc", s.rpc},
		kv{"opened_ns", s.openedNs}, kv{"headers_ns", s.headersNs}, kv{"why", why})
}

// ---------------------------------------------------------------- faults

func (r *relay) goawayEvent(by string, f *http2.GoAwayFrame) {
	r.point.record("goaway", kv{"conn", r.id}, kv{"by", by}, kv{"code", codeName(f.ErrCode)},
		kv{"last_stream_id", f.LastStreamID}, kv{"debug", string(f.DebugData())})
}

// goaway sends the client a GOAWAY (streams at or below its last-stream-id go on) and
// closes both connections after grace. Streams above it are cancelled at the backend and
// never answered (the client retries them). Returns the last-stream-id sent.
func (r *relay) goaway(code http2.ErrCode, lastGiven *int64, debug []byte, grace time.Duration) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.highest
	if lastGiven != nil {
		last = uint32(*lastGiven)
	}
	r.down.goaway(last, code, debug)
	if r.goawayLast < 0 || int64(last) < r.goawayLast {
		r.goawayLast = int64(last)
	}
	for sid, s := range r.streams {
		if sid > last {
			r.remove(s)
			r.up.reset(sid, http2.ErrCodeCancel)
		}
	}
	r.flush()
	r.point.record("goaway", kv{"conn", r.id}, kv{"by", "point"}, kv{"code", codeName(code)},
		kv{"last_stream_id", last}, kv{"debug", string(debug)})
	if r.grace == nil {
		ms := strconv.FormatFloat(float64(grace)/float64(time.Millisecond), 'g', -1, 64)
		r.grace = time.AfterFunc(grace, func() { r.close("GOAWAY grace of " + ms + " ms over") })
	}
	return last
}

// inFlight is the ids of the streams relayed to the backend and not finished.
func (r *relay) inFlight() []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]uint32, 0, len(r.streams))
	for sid := range r.streams {
		ids = append(ids, sid)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// updateMaxStreams advertises the MAX_CONCURRENT_STREAMS in force (a fault's, or the
// backend's).
func (r *relay) updateMaxStreams() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updateMaxStreamsLocked()
}

func (r *relay) updateMaxStreamsLocked() {
	if !r.ready.Load() || r.closing.Load() {
		return
	}
	value := r.point.advertisedMaxStreams(r.backendMax)
	if value == r.advertisedMax {
		return
	}
	r.advertisedMax = value
	r.down.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: value})
	r.settingsSent++
	r.flush()
}

// settingsAcknowledged says whether the client acknowledged every SETTINGS sent so far,
// within timeout.
func (r *relay) settingsAcknowledged(timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	r.mu.Lock()
	target := r.settingsSent
	for r.settingsAcked < target && !r.closing.Load() {
		signal := r.ackSignal
		r.mu.Unlock()
		select {
		case <-signal:
		case <-r.stop:
			r.mu.Lock()
			acked := r.settingsAcked >= target
			r.mu.Unlock()
			return acked
		case <-deadline.C:
			return false
		}
		r.mu.Lock()
	}
	acked := r.settingsAcked >= target
	r.mu.Unlock()
	return acked
}
