package main

// One HTTP/2 fault point: a TLS listener on loopback in front of one backend, its relayed
// connections, the faults active on it and the events it saw (chaos/http2/point.py's
// Point, in the same words).

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

const (
	loopback = "127.0.0.1"
	// How long an injection waits for the clients to acknowledge a SETTINGS change.
	settingsAckTimeout = 5 * time.Second
	pointCloseTimeout  = 5 * time.Second
	// Events kept a point; older ones are dropped (and counted).
	maxEvents = 100000
)

type kv struct {
	key   string
	value interface{}
}

type point struct {
	name        string
	serverTLS   *tls.Config
	certificate atomic.Value // *tls.Certificate presented to new connections
	listener    net.Listener
	address     [2]interface{}

	// Read on every frame, so kept apart from the lock.
	starving    atomic.Bool
	withholding atomic.Bool

	mu          sync.Mutex
	upstream    string
	upstreamTLS *tls.Config
	relays      map[int64]*relay
	faults      []*fault         // active, in injection order
	left        map[string]int64 // per-stream faults with a count: streams still to hit
	events      []map[string]interface{}
	dropped     int
	counters    map[string]int64
	lastID      int64
	wg          sync.WaitGroup
}

func serverTLS(p *point, clientCA string) (*tls.Config, error) {
	config := &tls.Config{
		MinVersion: tls.VersionTLS12, // HTTP/2 over TLS needs 1.2 or later
		NextProtos: []string{"h2"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.certificate.Load().(*tls.Certificate), nil
		},
	}
	if clientCA != "" {
		pool, err := loadPool(clientCA)
		if err != nil {
			return nil, err
		}
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return config, nil
}

func upstreamTLS(ca, serverName, clientCert, clientKey string) (*tls.Config, error) {
	pool, err := loadPool(ca)
	if err != nil {
		return nil, err
	}
	config := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		RootCAs:    pool,
		ServerName: serverName,
	}
	if clientCert != "" {
		pair, err := tls.LoadX509KeyPair(clientCert, keyOr(clientKey, clientCert))
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

func keyOr(key, cert string) string {
	if key == "" {
		return cert
	}
	return key
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return pool, nil
}

func newPoint(name, upstream, cert, key, clientCA string, up *tls.Config) (*point, error) {
	p := &point{
		name:        name,
		upstream:    upstream,
		upstreamTLS: up,
		relays:      map[int64]*relay{},
		left:        map[string]int64{},
		counters:    map[string]int64{},
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	p.certificate.Store(&pair)
	if p.serverTLS, err = serverTLS(p, clientCA); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *point) start() error {
	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return err
	}
	p.listener = listener
	address := listener.Addr().(*net.TCPAddr)
	p.address = [2]interface{}{address.IP.String(), address.Port}
	p.wg.Add(1)
	go p.accept()
	return nil
}

func (p *point) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(conn)
	}
}

func (p *point) serve(conn net.Conn) {
	defer p.wg.Done()
	tlsConn := tls.Server(conn, p.serverTLS)
	tlsConn.SetDeadline(time.Now().Add(connectTimeout))
	if err := tlsConn.Handshake(); err != nil {
		// A client that fails the handshake (an mTLS test without a certificate, a port
		// scan) is the client's problem.
		debugf("connection error: %v", err)
		conn.Close()
		return
	}
	tlsConn.SetDeadline(time.Time{})
	if tlsConn.ConnectionState().NegotiatedProtocol != "h2" {
		p.count("connections_without_h2") // gRPC always offers h2
		conn.Close()
		return
	}
	p.mu.Lock()
	if p.relays == nil { // the point is closing
		p.mu.Unlock()
		conn.Close()
		return
	}
	p.lastID++
	r := newRelay(p, p.lastID, conn.RemoteAddr().String())
	p.relays[r.id] = r
	p.mu.Unlock()
	r.run(tlsConn)
	p.mu.Lock()
	delete(p.relays, r.id)
	p.mu.Unlock()
}

// close stops listening and closes every connection (both hops); bounded.
func (p *point) close() {
	p.listener.Close()
	p.mu.Lock()
	relays := p.relayList()
	p.relays = nil
	p.mu.Unlock()
	for _, r := range relays {
		r.close("the point was removed")
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(pointCloseTimeout):
		log.Printf("point %s: connections still closing after %v", p.name, pointCloseTimeout)
	}
}

func (p *point) relayList() []*relay {
	out := make([]*relay, 0, len(p.relays))
	for _, r := range p.relays {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (p *point) openConnections() []*relay {
	p.mu.Lock()
	defer p.mu.Unlock()
	var open []*relay
	for _, r := range p.relayList() {
		if r.ready.Load() && !r.closing.Load() {
			open = append(open, r)
		}
	}
	return open
}

// ---------------------------------------------------------------- what relays ask

func (p *point) advertisedMaxStreams(backend uint32) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.active(kindMaxStreams); f != nil {
		return uint32(f.Value)
	}
	return backend
}

func (p *point) active(kind string) *fault {
	for _, f := range p.faults {
		if f.Kind == kind {
			return f
		}
	}
	return nil
}

// takeStreamFault is the per-stream fault a new stream gets (the earliest injected).
func (p *point) takeStreamFault() *fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if !perStream(f.Kind) {
			continue
		}
		if left, counted := p.left[f.Kind]; counted {
			if left <= 1 {
				p.remove(f.Kind)
				p.recordLocked("fault_spent", kv{"fault", f.Kind})
			} else {
				p.left[f.Kind] = left - 1
			}
		}
		p.counters["streams_"+f.Kind]++
		return f
	}
	return nil
}

// streamOpened: a stream reached the backend; inFlight are relayed on its connection.
func (p *point) streamOpened(inFlight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := int64(0)
	for _, r := range p.relays {
		total += int64(atomic.LoadInt32(&r.nstreams))
	}
	highest := p.counters["max_upstream_streams"]
	for _, n := range []int64{total, int64(inFlight)} {
		if n > highest {
			highest = n
		}
	}
	p.counters["max_upstream_streams"] = highest
	p.counters["upstream_streams"]++
}

func (p *point) count(what string) {
	p.mu.Lock()
	p.counters[what]++
	p.mu.Unlock()
}

// record records an event on the history's clock (CLOCK_MONOTONIC ns).
func (p *point) record(kind string, fields ...kv) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recordLocked(kind, fields...)
}

func (p *point) recordLocked(kind string, fields ...kv) {
	event := map[string]interface{}{"t_ns": nowNs(), "point": p.name, "event": kind}
	for _, f := range fields {
		event[f.key] = f.value
	}
	if len(p.events) >= maxEvents {
		p.events = p.events[1:]
		p.dropped++
	}
	p.events = append(p.events, event)
}

func (p *point) eventsSince(since int) map[string]interface{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := since - p.dropped
	if start < 0 {
		start = 0
	}
	if start > len(p.events) {
		start = len(p.events)
	}
	events := append([]map[string]interface{}{}, p.events[start:]...)
	return map[string]interface{}{
		"events": events, "next": p.dropped + len(p.events), "dropped": p.dropped,
	}
}

// ---------------------------------------------------------------- faults

// inject puts f in force (point.py Point.inject says what each kind does).
func (p *point) inject(f *fault) (map[string]interface{}, error) {
	if oneShot(f.Kind) {
		return p.goaway(f)
	}
	p.mu.Lock()
	if perStream(f.Kind) {
		delete(p.left, f.Kind)
		if f.Count != nil {
			p.left[f.Kind] = *f.Count
		}
	}
	p.remove(f.Kind)
	p.faults = append(p.faults, f)
	p.sync()
	p.mu.Unlock()
	relays := p.openConnections()
	result := map[string]interface{}{"connections": len(relays)}
	if f.Kind == kindMaxStreams {
		for _, r := range relays {
			r.updateMaxStreams()
		}
		acked := make(chan bool, len(relays))
		for _, r := range relays {
			go func(r *relay) { acked <- r.settingsAcknowledged(settingsAckTimeout) }(r)
		}
		unacknowledged := 0
		for range relays {
			if !<-acked {
				unacknowledged++
			}
		}
		result["unacknowledged"] = unacknowledged
	}
	result["in_force_ns"] = nowNs()
	fields := []kv{{"fault", f.Kind}, {"action", "in_force"}}
	for key, value := range f.toJSON() {
		if key != "kind" {
			fields = append(fields, kv{key, value})
		}
	}
	p.record("fault", fields...)
	return result, nil
}

// remove drops the active fault of kind (with the lock held) and keeps the flags read on
// every frame in step.
func (p *point) remove(kind string) *fault {
	var removed *fault
	kept := p.faults[:0]
	for _, f := range p.faults {
		if f.Kind == kind {
			removed = f
		} else {
			kept = append(kept, f)
		}
	}
	p.faults = kept
	p.sync()
	return removed
}

func (p *point) sync() {
	p.starving.Store(p.active(kindStarveFlowControl) != nil)
	p.withholding.Store(p.active(kindWithholdPingAcks) != nil)
}

func (p *point) goaway(f *fault) (map[string]interface{}, error) {
	relays := p.openConnections()
	if len(relays) == 0 {
		return nil, badInput("HTTP/2 point %s: no connection is open to send a GOAWAY on", pyRepr(p.name))
	}
	code, debug := f.errCode(), []byte(f.Debug)
	if f.Kind == kindTooManyPings {
		code, debug = http2.ErrCodeEnhanceYourCalm, []byte("too_many_pings")
	}
	type target struct {
		relay *relay
		last  *int64
	}
	var targets []target
	if f.Kind == kindGoawayBelow {
		for _, r := range relays {
			flight := r.inFlight()
			if f.LastStreamID != nil {
				targets = append(targets, target{r, f.LastStreamID})
			} else if len(flight) > 0 {
				last := int64(flight[0]) - 2
				if last < 0 {
					last = 0
				}
				targets = append(targets, target{r, &last})
			}
		}
		if len(targets) == 0 {
			return nil, badInput("HTTP/2 point %s: no stream in flight to send a GOAWAY below", pyRepr(p.name))
		}
	} else {
		for _, r := range relays {
			targets = append(targets, target{r, nil})
		}
	}
	grace := time.Duration(f.GraceMs) * time.Millisecond
	sent := make([]uint32, 0, len(targets))
	for _, t := range targets {
		sent = append(sent, t.relay.goaway(code, t.last, debug, grace))
	}
	return map[string]interface{}{
		"in_force_ns": nowNs(), "connections": len(sent), "last_stream_ids": sent,
	}, nil
}

// clear ends the fault of kind; a no-op (cleared false) when it is not active.
func (p *point) clear(kind string) (map[string]interface{}, error) {
	if !contains(kinds, kind) {
		return nil, badInput("unknown HTTP/2 fault kind %s (known: %s)", pyRepr(kind), joinKinds())
	}
	p.mu.Lock()
	removed := p.remove(kind)
	delete(p.left, kind)
	p.mu.Unlock()
	if removed != nil {
		switch kind {
		case kindStarveFlowControl:
			for _, r := range p.openConnections() {
				r.releaseWithheld()
			}
		case kindMaxStreams:
			for _, r := range p.openConnections() {
				r.updateMaxStreams()
			}
		}
		p.record("fault", kv{"fault", kind}, kv{"action", "cleared"})
	}
	return map[string]interface{}{"cleared": removed != nil, "cleared_ns": nowNs()}, nil
}

func joinKinds() string {
	out := ""
	for n, k := range kinds {
		if n > 0 {
			out += ", "
		}
		out += k
	}
	return out
}

// setCertificate presents cert (with key) to new connections; open ones keep theirs.
func (p *point) setCertificate(cert, key string) error {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return badInput("HTTP/2 point %s: certificate not loaded: %v", pyRepr(p.name), err)
	}
	p.certificate.Store(&pair)
	return nil
}

func (p *point) stats() map[string]interface{} {
	open := len(p.openConnections())
	p.mu.Lock()
	defer p.mu.Unlock()
	streams := int64(0)
	for _, r := range p.relays {
		streams += int64(atomic.LoadInt32(&r.nstreams))
	}
	faults := make([]map[string]interface{}, 0, len(p.faults))
	for _, f := range p.faults {
		faults = append(faults, f.toJSON())
	}
	counters := make(map[string]int64, len(p.counters))
	for k, v := range p.counters {
		counters[k] = v
	}
	return map[string]interface{}{
		"connections": open, "streams": streams, "faults": faults, "counters": counters,
	}
}
