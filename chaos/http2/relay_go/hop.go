package main

// One hop of a relayed connection: the TLS connection to one peer (the client, or the
// backend), framed by golang.org/x/net/http2's Framer and HPACK, with what the peer's
// SETTINGS allow us to send and the credit we owe it.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	readBuffer = 64 * 1024
	// A write buffer grown past this by one burst is dropped rather than kept for reuse.
	spareLimit = 256 * 1024
	// Receive windows the point advertises on both hops (relay.py says why these sizes).
	streamWindow     = 256 * 1024
	connectionWindow = 1024 * 1024
	defaultWindow    = 65535
	maxHeaderList    = 1 << 20
	unlimitedStreams = 1<<31 - 1
	// A peer that reads nothing for this long while we write to it is given up on: the
	// relay holds its lock while it writes.
	writeTimeout = 20 * time.Second
)

var clientPreface = []byte(http2.ClientPreface)

type headerField struct {
	name, value string
	sensitive   bool // never indexed (HPACK): the RPC tag, a new value every RPC
}

// outBuffer collects the frames written to a hop (under the relay's lock) until its
// writer goroutine takes them.
type outBuffer struct{ buf []byte }

func (o *outBuffer) Write(p []byte) (int, error) {
	o.buf = append(o.buf, p...)
	return len(p), nil
}

type hop struct {
	conn    *tls.Conn
	reader  *bufio.Reader
	out     outBuffer     // frames not yet handed to the writer goroutine
	wake    chan struct{} // tells the writer goroutine there is something to write
	wmu     sync.Mutex    // held by whoever writes to conn: the order of writes
	spare   []byte        // the writer's buffer, reused
	framer  *http2.Framer
	encoder *hpack.Encoder
	block   bytes.Buffer // the header block being encoded

	// What the peer allows us to send.
	sendConn      int64 // connection flow-control window
	initialWindow int64 // its SETTINGS_INITIAL_WINDOW_SIZE: a new stream's window
	maxFrame      uint32
	// Credit we owe the peer on the connection (WINDOW_UPDATE once it is large enough).
	owedConn int64
}

func newHop(conn *tls.Conn) *hop {
	h := &hop{
		conn:          conn,
		reader:        bufio.NewReaderSize(conn, readBuffer),
		wake:          make(chan struct{}, 1),
		sendConn:      defaultWindow,
		initialWindow: defaultWindow,
		maxFrame:      16384,
	}
	h.framer = http2.NewFramer(&h.out, h.reader)
	h.framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.framer.MaxHeaderListSize = maxHeaderList
	h.encoder = hpack.NewEncoder(&h.block)
	return h
}

// start writes what opens the hop: our SETTINGS and the connection window raised to
// connectionWindow (and the client preface first, toward the backend).
func (h *hop) start(preface bool, settings ...http2.Setting) {
	if preface {
		h.out.Write(clientPreface)
	}
	h.framer.WriteSettings(settings...)
	h.framer.WriteWindowUpdate(0, connectionWindow-defaultWindow)
}

// flush hands what was written to the writer goroutine (under the relay's lock). The
// writer takes everything written by then: under load, frames from several reads go out
// in one write, as they would from a peer's own batching.
func (h *hop) flush() {
	if len(h.out.buf) > 0 {
		select {
		case h.wake <- struct{}{}:
		default: // already woken: it will take these too
		}
	}
}

// take swaps out what is waiting to be written (under the relay's lock; with wmu held).
func (h *hop) take() []byte {
	data := h.out.buf
	h.out.buf = h.spare[:0]
	h.spare = nil
	return data
}

// send writes data to the peer (with wmu held); data becomes the next spare buffer.
func (h *hop) send(data []byte, timeout time.Duration) error {
	var err error
	if len(data) > 0 {
		h.conn.SetWriteDeadline(time.Now().Add(timeout))
		_, err = h.conn.Write(data)
	}
	if cap(data) <= spareLimit {
		h.spare = data[:0]
	}
	return err
}

func (h *hop) headers(sid uint32, fields []headerField, endStream bool) {
	h.block.Reset()
	for _, f := range fields {
		h.encoder.WriteField(hpack.HeaderField{Name: f.name, Value: f.value, Sensitive: f.sensitive})
	}
	block := h.block.Bytes()
	first := true
	for first || len(block) > 0 {
		size := len(block)
		if size > int(h.maxFrame) {
			size = int(h.maxFrame)
		}
		last := size == len(block)
		if first {
			h.framer.WriteHeaders(http2.HeadersFrameParam{
				StreamID: sid, BlockFragment: block[:size], EndStream: endStream, EndHeaders: last,
			})
		} else {
			h.framer.WriteContinuation(sid, last, block[:size])
		}
		block = block[size:]
		first = false
	}
}

func (h *hop) data(sid uint32, payload []byte, endStream bool) {
	h.framer.WriteData(sid, endStream, payload)
}

func (h *hop) reset(sid uint32, code http2.ErrCode) {
	h.framer.WriteRSTStream(sid, code)
}

func (h *hop) ping(ack bool, payload [8]byte) {
	h.framer.WritePing(ack, payload)
}

func (h *hop) goaway(last uint32, code http2.ErrCode, debug []byte) {
	h.framer.WriteGoAway(last, code, debug)
}

func (h *hop) settings(settings ...http2.Setting) {
	h.framer.WriteSettings(settings...)
}

// credit gives the peer back n bytes of connection window (a WINDOW_UPDATE once a quarter
// of the window is owed: fewer frames, and the peer never runs short).
func (h *hop) credit(n int64) {
	if n <= 0 {
		return
	}
	h.owedConn += n
	if h.owedConn >= connectionWindow/4 {
		h.framer.WriteWindowUpdate(0, uint32(h.owedConn))
		h.owedConn = 0
	}
}

// applySettings takes the peer's SETTINGS; returns the change of its initial stream
// window (to apply to open streams) and its MAX_CONCURRENT_STREAMS when it sent one.
func (h *hop) applySettings(f *http2.SettingsFrame) (windowDelta int64, maxStreams *uint32, err error) {
	err = f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			h.encoder.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingInitialWindowSize:
			windowDelta += int64(s.Val) - h.initialWindow
			h.initialWindow = int64(s.Val)
		case http2.SettingMaxFrameSize:
			h.maxFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			v := s.Val
			maxStreams = &v
		}
		return nil
	})
	if err == nil {
		h.framer.WriteSettingsAck()
	}
	return windowDelta, maxStreams, err
}
