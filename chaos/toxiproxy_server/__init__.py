"""An embedded Toxiproxy-compatible server: the Toxiproxy 2.12 HTTP API and proxy behaviour.

Run it with ``python -m chaos.toxiproxy_server`` or ``grpc-chaos-toxiproxy`` (flags in
``flags.py``; user documentation in docs/toxiproxy-server.md). It follows
docs/toxiproxy-api.md, which was checked against the real server. Map of the package:

    __main__          process: flags, logging, signals, --parent-watch, --ready-line
    app               the server: proxies, toxics and HTTP API in one event loop
    api               routing and one handler per endpoint
    http11            a small HTTP/1.1 server with Go net/http's visible behaviour
    gojson, goaddr    Go's JSON and network error texts and rules, which clients see
    collection        the named proxies; create, replace, delete, populate
    proxy             one proxy: listener, connections, start/stop/update
    link              one connection: two links; the data path
    pipeline          the toxic chain of one link, and how it changes while data flows
    toxic_collection  a proxy's toxic definitions, applied to its open links
    toxics/           one module per toxic type, and their registry
    metrics           the Prometheus text of /metrics
"""

VERSION = "2.12.0-grpc-chaos.0.1.0"  # the reference version it follows, and our own
