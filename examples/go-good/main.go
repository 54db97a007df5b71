// Command inventory-server is examples/good in Go: shop.v1.Inventory/GetItem and
// grpc.health.v1 over TLS, done right for a rollout (README.md).
//
//	inventory-server --listen 127.0.0.1:50051 --cert server.pem --key server.key
//	    [--client-ca ca.pem] [--id b1] [--lookup-ms 20] [--drain-ms 500] [--grace-ms 5000]
//
// What it does, as the Python examples/common/inventory_server.py does by default:
//
//	answer    headers, answer and trailers leave together after the lookup (a call is not
//	          committed before it is answered); with --id the backend names itself in the
//	          x-backend-id trailer
//	keepalive clients may ping every 0.5 s, also with no call open
//	max age   GOAWAY at 5 s (2 s grace), so clients reconnect and re-resolve DNS
//	SIGTERM   health NOT_SERVING -> --drain-ms for clients to move away -> GracefulStop
//	          (listener closed, GOAWAY; calls in flight get --grace-ms) -> exit 0
//
// Bad flags or files: one line on stderr, exit 2.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	shopv1 "example.com/shop/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

const (
	service      = "shop.v1.Inventory"
	backendIDKey = "x-backend-id"
	exitUsage    = 2
	// gRPC clients ping at most once a second (grpc-core's floor); accepting pings half as
	// far apart leaves room for timer jitter, so a well-behaved client earns no strike.
	minPingInterval = 500 * time.Millisecond
	// A max age is what makes clients re-resolve DNS (gRPC does not poll it); the usual
	// 30 s is longer than any scenario waits for a scaled-out backend. The grace exceeds a
	// call's deadline (2 s in the target), so the age cuts no call.
	maxConnectionAge      = 5000 * time.Millisecond
	maxConnectionAgeGrace = 2 * time.Second
)

type options struct {
	listen, cert, key, clientCA, id string
	lookup, drain, grace            time.Duration
}

type inventory struct {
	opts options
}

func (s *inventory) GetItem(ctx context.Context, req *shopv1.GetItemRequest) (*shopv1.Item, error) {
	if s.opts.id != "" {
		// The trailer is sent with the answer: naming the backend commits nothing early.
		if err := grpc.SetTrailer(ctx, metadata.Pairs(backendIDKey, s.opts.id)); err != nil {
			return nil, err
		}
	}
	select {
	case <-time.After(s.opts.lookup): // the database lookup this service stands for
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &shopv1.Item{Sku: req.Sku, Name: "Item " + req.Sku, Stock: int32(len(req.Sku))}, nil
}

func parseFlags() (options, error) {
	var o options
	var lookupMs, drainMs, graceMs uint
	fs := flag.NewFlagSet("inventory-server", flag.ContinueOnError)
	fs.SetOutput(ioutil.Discard) // errors are reported as one line by main
	fs.StringVar(&o.listen, "listen", "", "HOST:PORT to serve on (TLS), required")
	fs.StringVar(&o.cert, "cert", "", "certificate chain, PEM, required")
	fs.StringVar(&o.key, "key", "", "private key, PEM, required")
	fs.StringVar(&o.clientCA, "client-ca", "", "require client certificates from this CA")
	fs.StringVar(&o.id, "id", "", "name this backend in the x-backend-id trailer")
	fs.UintVar(&lookupMs, "lookup-ms", 20, "time one lookup takes")
	fs.UintVar(&drainMs, "drain-ms", 500, "on SIGTERM, NOT_SERVING this long before closing")
	fs.UintVar(&graceMs, "grace-ms", 5000, "then this long for calls in flight")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.listen == "" || o.cert == "" || o.key == "" {
		return o, fmt.Errorf("--listen, --cert and --key are required")
	}
	o.lookup = time.Duration(lookupMs) * time.Millisecond
	o.drain = time.Duration(drainMs) * time.Millisecond
	o.grace = time.Duration(graceMs) * time.Millisecond
	return o, nil
}

func tlsCredentials(o options) (credentials.TransportCredentials, error) {
	pair, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s / key %s: %v", o.cert, o.key, err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if o.clientCA != "" {
		pem, err := ioutil.ReadFile(o.clientCA)
		if err != nil {
			return nil, fmt.Errorf("cannot read client CA: %v", err)
		}
		config.ClientCAs = x509.NewCertPool()
		if !config.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", o.clientCA)
		}
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(config), nil
}

// shutDown drains: NOT_SERVING, the drain window, then GracefulStop bounded by the grace.
func shutDown(server *grpc.Server, healthServer *health.Server, o options) {
	healthServer.Shutdown() // NOT_SERVING for every service, and it stays so
	log.Printf("SIGTERM: health NOT_SERVING")
	time.Sleep(o.drain) // the drain window itself, not a wait for a condition
	log.Printf("closing the listener, %v grace for calls in flight", o.grace)
	stopped := make(chan struct{})
	go func() { server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(o.grace):
		server.Stop() // calls still running past the grace are cancelled
	}
	log.Printf("stopped")
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	creds, err := tlsCredentials(o)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v", o.listen, err)
	}
	server := grpc.NewServer(
		grpc.Creds(creds),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: minPingInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge: maxConnectionAge, MaxConnectionAgeGrace: maxConnectionAgeGrace}))
	shopv1.RegisterInventoryServer(server, &inventory{opts: o})
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(server, healthServer)
	// Signals are caught before serving, so a SIGTERM right after start still drains.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthServer.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)
	log.Printf("serving %s on %s (id %q)", service, o.listen, o.id)
	select {
	case <-signals:
		shutDown(server, healthServer, o)
		return nil
	case err := <-served:
		return fmt.Errorf("serving stopped: %v", err)
	}
}

func main() {
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("inventory-server[%d] ", os.Getpid()))
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "inventory-server: error: %v\n", err)
		os.Exit(exitUsage)
	}
}
