// grpc-chaos-http2-point: the HTTP/2 fault point process, compiled. It serves the control
// API of chaos/http2/service.py (newline-delimited JSON on one loopback TCP port, the same
// operations, answers and error messages) and relays frames as chaos/http2/relay.py does,
// through golang.org/x/net/http2's Framer and HPACK: chaos/http2/control.py runs it when it
// is built (chaos/http2/go_build.py), the Python point otherwise.
//
//	grpc-chaos-http2-point --parent-pid PID [--log-level LEVEL]
//
// It prints one line, {"ready": true, "control": "127.0.0.1:PORT", "pid": PID}, then
// serves until SIGTERM or SIGINT (every point closed, exit 0) or until its parent dies (a
// lifeline on stdin, and the parent-death signal).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const maxRequest = 1 << 20 // bytes in one request line

var debug bool

func debugf(format string, args ...interface{}) {
	if debug {
		log.Printf(format, args...)
	}
}

func init() {
	// Init functions run on the main thread, which lives as long as the process does; the
	// kernel keeps the parent-death signal per thread.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
}

// nowNs reads CLOCK_MONOTONIC, the history's clock (time.Now does not expose it).
func nowNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // CLOCK_MONOTONIC always exists on Linux
	}
	return ts.Nano()
}

type service struct {
	mu     sync.Mutex
	points map[string]*point
}

func main() {
	parent := flag.Int("parent-pid", 0, "die when this process dies")
	level := flag.String("log-level", "warning", "debug shows connection errors")
	flag.Parse()
	debug = strings.EqualFold(*level, "debug")
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("chaos.http2: ")
	if *parent != 0 && os.Getppid() != *parent {
		os.Exit(1) // the parent died before the parent-death signal was set
	}
	gone := make(chan struct{})
	go func() {
		// The parent holds stdin open and never writes: EOF means it has gone.
		io.Copy(ioutil.Discard, os.Stdin)
		close(gone)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		log.Fatal(err)
	}
	s := &service{points: map[string]*point{}}
	go s.serve(listener)
	fmt.Printf("{\"ready\": true, \"control\": %q, \"pid\": %d}\n", listener.Addr().String(), os.Getpid())

	select {
	case <-gone:
		os.Exit(0)
	case <-signals:
	}
	listener.Close()
	s.closeAll()
}

func (s *service) closeAll() {
	s.mu.Lock()
	points := make([]*point, 0, len(s.points))
	for _, p := range s.points {
		points = append(points, p)
	}
	s.points = map[string]*point{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range points {
		wg.Add(1)
		go func(p *point) { defer wg.Done(); p.close() }(p)
	}
	wg.Wait()
}

func (s *service) serve(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go s.client(conn)
	}
}

// client answers one control connection's requests, in order.
func (s *service) client(conn net.Conn) {
	defer conn.Close()
	reader := bufio.NewReaderSize(conn, 64*1024)
	for {
		line, err := readLine(reader)
		if err != nil {
			return // a line over the limit, a reset, the end
		}
		answer := s.answer(line)
		out, _ := json.Marshal(answer)
		if _, err := conn.Write(append(out, '\n')); err != nil {
			return
		}
	}
}

func readLine(reader *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, more, err := reader.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > maxRequest {
			return nil, errors.New("request line over the limit")
		}
		if !more {
			return line, nil
		}
	}
}

// missing is a request without a field it needs (Python's KeyError: "missing 'name'").
type missing string

func (m missing) Error() string { return "missing '" + string(m) + "'" }

func (s *service) answer(line []byte) map[string]interface{} {
	decoder := json.NewDecoder(strings.NewReader(string(line)))
	decoder.UseNumber()
	var raw interface{}
	result, err := map[string]interface{}(nil), error(nil)
	if err = decoder.Decode(&raw); err != nil {
		err = badInput("%v", err)
	} else if request, ok := raw.(map[string]interface{}); !ok {
		err = badInput("a request is a JSON object")
	} else {
		result, err = s.handle(request)
	}
	if err != nil {
		kind := "OSError"
		var bad *valueError
		var miss missing
		if errors.As(err, &bad) || errors.As(err, &miss) {
			kind = "ValueError"
		}
		return map[string]interface{}{"ok": false, "error": err.Error(), "type": kind}
	}
	answer := map[string]interface{}{"ok": true}
	for k, v := range result {
		answer[k] = v
	}
	return answer
}

func (s *service) handle(request map[string]interface{}) (map[string]interface{}, error) {
	op := request["op"]
	switch op {
	case "points":
		s.mu.Lock()
		names := make([]string, 0, len(s.points))
		for name := range s.points {
			names = append(names, name)
		}
		s.mu.Unlock()
		sort.Strings(names)
		return map[string]interface{}{"points": names}, nil
	case "add":
		return s.add(request)
	case "remove", "upstream", "certificate", "inject", "clear", "events", "stats":
	default:
		return nil, badInput("unknown operation %s", pyRepr(op))
	}
	p, err := s.point(request["name"])
	if err != nil {
		return nil, err
	}
	switch op {
	case "remove":
		s.mu.Lock()
		delete(s.points, p.name)
		s.mu.Unlock()
		p.close()
		return map[string]interface{}{}, nil
	case "upstream":
		address, err := hostPort(request, "upstream")
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.upstream = address
		p.mu.Unlock()
		host, port, _ := net.SplitHostPort(address)
		return map[string]interface{}{"upstream": []interface{}{host, json.Number(port)}}, nil
	case "certificate":
		cert, err := stringField(request, "cert")
		if err != nil {
			return nil, err
		}
		key, err := stringField(request, "key")
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{}, p.setCertificate(cert, key)
	case "inject":
		f, err := parseFault(request["fault"])
		if err != nil {
			return nil, err
		}
		return p.inject(f)
	case "clear":
		kind := fmt.Sprint(request["kind"])
		if k, ok := request["kind"].(string); ok {
			kind = k
		} else if request["kind"] == nil {
			kind = "None"
		}
		return p.clear(kind)
	case "events":
		since := 0
		if v, ok := request["since"]; ok {
			n, err := intParam("since", v)
			if err != nil {
				return nil, err
			}
			since = int(n)
		}
		return p.eventsSince(since), nil
	}
	return p.stats(), nil
}

func (s *service) point(name interface{}) (*point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := name.(string); ok {
		if p := s.points[n]; p != nil {
			return p, nil
		}
	}
	names := make([]string, 0, len(s.points))
	for n := range s.points {
		names = append(names, n)
	}
	sort.Strings(names)
	known := strings.Join(names, ", ")
	if known == "" {
		known = "none"
	}
	return nil, badInput("no HTTP/2 point named %s (points: %s)", pyRepr(name), known)
}

func (s *service) add(request map[string]interface{}) (map[string]interface{}, error) {
	rawName, ok := request["name"]
	if !ok {
		return nil, missing("name")
	}
	name, ok := rawName.(string)
	if !ok || name == "" {
		return nil, badInput("a point name is a non-empty string, got %s", pyRepr(rawName))
	}
	s.mu.Lock()
	_, exists := s.points[name]
	s.mu.Unlock()
	if exists {
		return nil, badInput("an HTTP/2 point named %s exists already", pyRepr(name))
	}
	address, err := hostPort(request, "upstream")
	if err != nil {
		return nil, err
	}
	var paths [7]string
	for n, field := range []string{"server_name", "cert", "key", "ca"} {
		if paths[n], err = stringField(request, field); err != nil {
			return nil, err
		}
	}
	for n, field := range []string{"client_ca", "client_cert", "client_key"} {
		if v, ok := request[field].(string); ok {
			paths[4+n] = v
		}
	}
	up, err := upstreamTLS(paths[3], paths[0], paths[5], paths[6])
	if err != nil {
		return nil, err
	}
	p, err := newPoint(name, address, paths[1], paths[2], paths[4], up)
	if err != nil {
		return nil, err
	}
	if err := p.start(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, exists := s.points[name]; exists { // added meanwhile by another connection
		s.mu.Unlock()
		p.close()
		return nil, badInput("an HTTP/2 point named %s exists already", pyRepr(name))
	}
	s.points[name] = p
	s.mu.Unlock()
	return map[string]interface{}{"address": p.address[:]}, nil
}

func stringField(request map[string]interface{}, field string) (string, error) {
	v, ok := request[field]
	if !ok {
		return "", missing(field)
	}
	text, ok := v.(string)
	if !ok {
		return "", badInput("%s must be a string, got %s", field, pyRepr(v))
	}
	return text, nil
}

// hostPort reads a [host, port] pair.
func hostPort(request map[string]interface{}, field string) (string, error) {
	v, ok := request[field]
	if !ok {
		return "", missing(field)
	}
	pair, ok := v.([]interface{})
	if !ok || len(pair) != 2 {
		return "", badInput("%s is [host, port], got %s", field, pyRepr(v))
	}
	host, ok := pair[0].(string)
	port, err := intParam("port", pair[1])
	if !ok || err != nil || port < 0 || port > 65535 {
		return "", badInput("%s is [host, port], got %s", field, pyRepr(v))
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10)), nil
}
