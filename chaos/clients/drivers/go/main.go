// Command grpc-chaos-go-driver is grpc-chaos's client driver for grpc-go
// (proto/driver.proto): each channel is a grpc.ClientConn configured from the protocol's
// portable Settings and the profile's service config, driven over the ClientDriver service.
//
// It serves plaintext on 127.0.0.1, prints {"driver": "grpc-chaos", "protocol": 1,
// "port": N} once it listens, and exits when its stdin reaches EOF or on SIGTERM/SIGINT.
//
// Built from Debian's grpc-go 1.33 (Makefile). What that version cannot honour is said in
// Describe (settings it leaves out, ignored_fields, notes) or refused by OpenChannel.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	driverpb "grpcchaos/driver/v1"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/health" // the client health check that healthCheckConfig runs
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

const protocol = 1

// grpc-go 1.33 retries only when this is set (internal/envconfig reads it at start-up), and
// a dial option cannot turn retries on: the environment decides for every channel.
var retriesOn = strings.EqualFold(os.Getenv("GRPC_GO_RETRY"), "on")

// Defaults of grpc-go 1.33 that WithKeepaliveParams and WithConnectParams would otherwise
// replace with zeros (internal/transport/defaults.go, clientconn.go).
const (
	noKeepalive              = time.Duration(math.MaxInt64)
	defaultMinConnectTimeout = 20 * time.Second
)

var settings = []string{
	"keepalive_time_ms", "keepalive_timeout_ms", "keepalive_without_calls",
	"initial_reconnect_backoff_ms", "max_reconnect_backoff_ms", "min_connect_timeout_ms",
	"max_receive_message_bytes", "max_send_message_bytes",
}

var notes = []string{
	"dns_min_resolution_interval_ms: grpc-go 1.33 re-resolves DNS at most every 30 s " +
		"(minDNSResRate, internal/resolver/dns); it cannot be set",
	"keepalive_time_ms under 10000 is raised to 10 s (grpc-go's floor, " +
		"internal.KeepaliveMinPingTime)",
	"healthCheckConfig is honoured under round_robin only; pick_first does not check health",
	"no outlier detection: grpc-go 1.33 has no outlier_detection policy",
}

func init() {
	// Init functions run on the main thread, which lives as long as the process does; the
	// kernel keeps the parent-death signal per thread. stdin's EOF covers a parent that
	// died before this ran.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0)
}

// nowNs reads CLOCK_MONOTONIC, the runner's clock; time.Now does not expose its reading.
func nowNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // CLOCK_MONOTONIC always exists on Linux
	}
	return ts.Nano()
}

type driver struct {
	driverpb.UnimplementedClientDriverServer
	channelz *channelz
	mu       sync.Mutex
	lastID   uint64
	channels map[uint64]*channel
	loads    map[uint64]*load
}

type channel struct {
	cc         *grpc.ClientConn
	channelzID int64 // 0: not found in channelz
}

func (d *driver) newID() uint64 {
	d.lastID++
	return d.lastID
}

func (d *driver) channel(id uint64) (*channel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch := d.channels[id]; ch != nil {
		return ch, nil
	}
	return nil, status.Errorf(codes.NotFound, "no channel %d", id)
}

func (d *driver) load(id uint64) (*load, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.loads[id]; l != nil {
		return l, nil
	}
	return nil, status.Errorf(codes.NotFound, "no load %d", id)
}

func (d *driver) Describe(_ context.Context, req *driverpb.DescribeRequest) (*driverpb.Capabilities, error) {
	if req.Protocol != protocol {
		return nil, status.Errorf(codes.FailedPrecondition,
			"this driver speaks protocol %d, not %d", protocol, req.Protocol)
	}
	caps := &driverpb.Capabilities{
		Protocol:       protocol,
		Implementation: "grpc-go",
		Version:        grpc.Version,
		Language:       "go",
		Settings:       settings,
		LbPolicies:     []string{"pick_first", "round_robin"},
		Retries:        retriesOn,
		HealthCheck:    true,
		Subchannels:    true,
		// internal.KeepaliveMinPingTime: dialoptions.go raises a shorter time to it.
		Minimums: map[string]int64{"keepalive_time_ms": 10000},
		// service_config.go's jsonMC has no field for it: encoding/json drops it.
		IgnoredFields: []string{"hedgingPolicy"},
	}
	if retriesOn {
		caps.Settings = append(append([]string(nil), settings...), "retries")
		caps.Notes = append([]string{"GRPC_GO_RETRY=on: grpc-go 1.33 honours a retryPolicy only with it"}, notes...)
	} else {
		caps.Notes = append([]string{"GRPC_GO_RETRY is not on: grpc-go 1.33 ignores every retryPolicy"}, notes...)
	}
	caps.NowNs = nowNs()
	return caps, nil
}

func (d *driver) OpenChannel(ctx context.Context, cfg *driverpb.ChannelConfig) (*driverpb.ChannelRef, error) {
	opts, err := dialOptions(cfg)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// Not blocking: connecting is the client's business, as a real client's is.
	cc, channelzID, err := d.channelz.dial(ctx, cfg.Target, opts)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.newID()
	d.channels[id] = &channel{cc, channelzID}
	return &driverpb.ChannelRef{Id: id}, nil
}

func (d *driver) Subchannels(ctx context.Context, ref *driverpb.ChannelRef) (*driverpb.SubchannelList, error) {
	ch, err := d.channel(ref.Id)
	if err != nil {
		return nil, err
	}
	if ch.channelzID == 0 {
		return nil, status.Error(codes.Internal, "that channel was not found in channelz")
	}
	return d.channelz.subchannels(ctx, ch.channelzID)
}

func (d *driver) CloseChannel(_ context.Context, ref *driverpb.ChannelRef) (*driverpb.Closed, error) {
	d.mu.Lock()
	ch := d.channels[ref.Id]
	delete(d.channels, ref.Id)
	var loads []*load
	for id, l := range d.loads {
		if l.channel == ref.Id {
			loads = append(loads, l)
			delete(d.loads, id)
		}
	}
	d.mu.Unlock()
	for _, l := range loads {
		l.finish()
	}
	if ch != nil {
		ch.cc.Close()
	}
	return &driverpb.Closed{}, nil
}

func (d *driver) Call(ctx context.Context, req *driverpb.CallRequest) (*driverpb.RpcRecord, error) {
	ch, err := d.channel(req.Channel)
	if err != nil {
		return nil, err
	}
	u := unary{ch.cc, req.Method, time.Duration(req.DeadlineMs) * time.Millisecond, req.IdentityKey}
	return u.call(ctx, nowNs(), req.Request), nil
}

func (d *driver) StartLoad(_ context.Context, spec *driverpb.LoadSpec) (*driverpb.LoadRef, error) {
	switch {
	case len(spec.Requests) == 0:
		return nil, status.Error(codes.InvalidArgument, "a load needs at least one request")
	case math.IsNaN(spec.Rate) || math.IsInf(spec.Rate, 0):
		return nil, status.Errorf(codes.InvalidArgument, "rate %v is not a number of RPCs a second", spec.Rate)
	case spec.Rate <= 0 && spec.Concurrency < 1:
		return nil, status.Error(codes.InvalidArgument, "concurrency must be at least 1")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.channels[spec.Channel]
	if ch == nil {
		return nil, status.Errorf(codes.NotFound, "no channel %d", spec.Channel)
	}
	// Started under the lock: CloseChannel then finds it running, with its workers counted.
	l := startLoad(spec, ch.cc)
	id := d.newID()
	d.loads[id] = l
	return &driverpb.LoadRef{Id: id}, nil
}

func (d *driver) SetIdle(_ context.Context, gaps *driverpb.IdleGaps) (*driverpb.LoadRef, error) {
	l, err := d.load(gaps.Load)
	if err != nil {
		return nil, err
	}
	l.setIdle(gaps.Idle)
	return &driverpb.LoadRef{Id: gaps.Load}, nil
}

func (d *driver) StopLoad(_ context.Context, ref *driverpb.LoadRef) (*driverpb.LoadSummary, error) {
	l, err := d.load(ref.Id)
	if err != nil {
		return nil, err
	}
	return l.finish(), nil
}

func (d *driver) Records(ref *driverpb.LoadRef, stream driverpb.ClientDriver_RecordsServer) error {
	l, err := d.load(ref.Id)
	if err != nil {
		return err
	}
	if !l.claimReader() {
		return status.Errorf(codes.FailedPrecondition, "load %d already has a reader", ref.Id)
	}
	for {
		batch, finished := l.take()
		if err := stream.Send(batch); err != nil {
			return err
		}
		if finished {
			return nil
		}
		if len(batch.Records) == batchMax {
			continue
		}
		heartbeat := time.NewTimer(heartbeatInterval)
		select {
		case <-l.queuedMore:
		case <-l.done:
		case <-heartbeat.C:
		case <-stream.Context().Done():
			heartbeat.Stop()
			return status.FromContextError(stream.Context().Err()).Err()
		}
		heartbeat.Stop()
	}
}

func dialOptions(cfg *driverpb.ChannelConfig) ([]grpc.DialOption, error) {
	for name := range cfg.Options {
		return nil, fmt.Errorf("options: grpc-go takes no implementation-specific options (got %q)", name)
	}
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithStatsHandler(headerTimer{})}
	calls := []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
	if cfg.ServiceConfigJson != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(cfg.ServiceConfigJson))
	}
	s := cfg.Settings
	if s == nil {
		s = &driverpb.Settings{}
	}
	if s.GetXDnsMinResolutionIntervalMs() != nil {
		return nil, errors.New("settings.dns_min_resolution_interval_ms: grpc-go 1.33 " +
			"re-resolves DNS at most every 30 s; it cannot be set")
	}
	if s.GetXRetries() != nil {
		if !s.GetRetries() {
			opts = append(opts, grpc.WithDisableRetry())
		} else if !retriesOn {
			return nil, errors.New("settings.retries: grpc-go 1.33 retries only with " +
				"GRPC_GO_RETRY=on in the driver's environment")
		}
	}
	if s.GetXKeepaliveTimeMs() != nil || s.GetXKeepaliveTimeoutMs() != nil || s.GetXKeepaliveWithoutCalls() != nil {
		kp := keepalive.ClientParameters{Time: noKeepalive, PermitWithoutStream: s.GetKeepaliveWithoutCalls()}
		if s.GetXKeepaliveTimeMs() != nil {
			if kp.Time, err = millis("keepalive_time_ms", s.GetKeepaliveTimeMs()); err != nil {
				return nil, err
			}
		}
		if s.GetXKeepaliveTimeoutMs() != nil {
			if kp.Timeout, err = millis("keepalive_timeout_ms", s.GetKeepaliveTimeoutMs()); err != nil {
				return nil, err
			}
		}
		opts = append(opts, grpc.WithKeepaliveParams(kp))
	}
	if s.GetXInitialReconnectBackoffMs() != nil || s.GetXMaxReconnectBackoffMs() != nil || s.GetXMinConnectTimeoutMs() != nil {
		cp := grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: defaultMinConnectTimeout}
		if s.GetXInitialReconnectBackoffMs() != nil {
			if cp.Backoff.BaseDelay, err = millis("initial_reconnect_backoff_ms", s.GetInitialReconnectBackoffMs()); err != nil {
				return nil, err
			}
		}
		if s.GetXMaxReconnectBackoffMs() != nil {
			if cp.Backoff.MaxDelay, err = millis("max_reconnect_backoff_ms", s.GetMaxReconnectBackoffMs()); err != nil {
				return nil, err
			}
		}
		if s.GetXMinConnectTimeoutMs() != nil {
			if cp.MinConnectTimeout, err = millis("min_connect_timeout_ms", s.GetMinConnectTimeoutMs()); err != nil {
				return nil, err
			}
		}
		opts = append(opts, grpc.WithConnectParams(cp))
	}
	if s.GetXMaxReceiveMessageBytes() != nil {
		calls = append(calls, grpc.MaxCallRecvMsgSize(messageBytes(s.GetMaxReceiveMessageBytes())))
	}
	if s.GetXMaxSendMessageBytes() != nil {
		calls = append(calls, grpc.MaxCallSendMsgSize(messageBytes(s.GetMaxSendMessageBytes())))
	}
	return append(opts, grpc.WithDefaultCallOptions(calls...)), nil
}

func millis(field string, ms int64) (time.Duration, error) {
	if ms <= 0 {
		return 0, fmt.Errorf("settings.%s: %d is not a positive number of milliseconds", field, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// messageBytes reads a negative size as C core's -1 does, profiles being written for grpcio:
// no limit.
func messageBytes(n int64) int {
	if n < 0 || n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func transportCredentials(cfg *driverpb.ChannelConfig) (credentials.TransportCredentials, error) {
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	config := &tls.Config{}
	if cfg.CaFile != "" {
		pem, err := ioutil.ReadFile(cfg.CaFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %v", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.CaFile)
		}
	}
	if cfg.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s / key_file %s: %v", cfg.CertFile, cfg.KeyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// rawCodec sends the runner's serialized requests as they are and keeps the answers' bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot send %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	if b, ok := v.(*[]byte); ok {
		*b = append([]byte(nil), data...)
		return nil
	}
	return fmt.Errorf("rawCodec: cannot receive into %T", v)
}

// Name is the registered proto codec's: the bytes on the wire are protobuf messages.
func (rawCodec) Name() string { return "proto" }

// headersAt is the context key under which an RPC keeps where headerTimer notes when its
// response headers arrived.
type headersAt struct{}

// headerTimer is the only place grpc-go 1.33 tells when response headers arrive (the
// grpc.Header call option fills in only once the call has ended).
type headerTimer struct{}

func (headerTimer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (headerTimer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (headerTimer) HandleConn(context.Context, stats.ConnStats) {}

func (headerTimer) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.InHeader); ok {
		if at, ok := ctx.Value(headersAt{}).(*int64); ok {
			// The last attempt's headers are the answer's (retries may make more than one).
			atomic.StoreInt64(at, nowNs())
		}
	}
}

// Canonical status code names (grpc's doc/statuscodes.md); codes.Code's String() spells
// them otherwise ("Unavailable").
var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "UNKNOWN"
}

// unary is one method on one channel, called as the runner asked.
type unary struct {
	cc       *grpc.ClientConn
	method   string
	deadline time.Duration // none when 0
	key      string        // the metadata key naming the backend; "" for none
}

// call makes one RPC; start is the CLOCK_MONOTONIC reading the caller took just before.
func (u unary) call(ctx context.Context, start int64, request []byte) *driverpb.RpcRecord {
	var headersNs int64
	ctx = context.WithValue(ctx, headersAt{}, &headersNs)
	if u.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, u.deadline)
		defer cancel()
	}
	var header, trailer metadata.MD
	var response []byte
	err := u.cc.Invoke(ctx, u.method, &request, &response, grpc.Header(&header), grpc.Trailer(&trailer))
	end := nowNs()
	st := status.Convert(err)
	record := &driverpb.RpcRecord{
		StartNs:   start,
		EndNs:     end,
		Code:      codeName(st.Code()),
		Message:   st.Message(),
		HeadersNs: atomic.LoadInt64(&headersNs),
	}
	if err == nil {
		record.Response = response
	}
	if u.key != "" {
		for _, md := range []metadata.MD{header, trailer} {
			if values := md.Get(u.key); len(values) > 0 {
				record.Backend = values[0]
				break
			}
		}
	}
	return record
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-chaos-go-driver:", err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	z, err := newChannelz(server, listener.Addr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-chaos-go-driver: channelz:", err)
		os.Exit(1)
	}
	driverpb.RegisterClientDriverServer(server, &driver{
		channelz: z,
		channels: map[uint64]*channel{},
		loads:    map[uint64]*load{},
	})
	go server.Serve(listener) // connections wait in the listen backlog until it runs
	fmt.Printf("{\"driver\": \"grpc-chaos\", \"protocol\": %d, \"port\": %d}\n",
		protocol, listener.Addr().(*net.TCPAddr).Port)

	gone := make(chan struct{})
	go func() {
		// The parent holds stdin open and never writes: EOF means it has gone.
		io.Copy(ioutil.Discard, os.Stdin)
		close(gone)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-gone:
	case <-signals:
	}
	// Nothing to flush or hand over: the channels and loads die with the process.
}
