"""grpc-chaos: chaos and resilience tests for gRPC fleets (public API is re-exported here)."""
