"""What grpc-chaos observes of the client and the machine, beside the RPC history.

``channelz`` (the client channel's subchannels and their calls), ``attribution`` (which
backend answered an RPC), ``client_shape`` (the channel's load-balancing shape),
``grpc_log`` (gRPC core's ERROR log as evidence), ``server_watch`` (the health and listener
state of each backend, seen from outside) and the two stall detectors the judge reads:
``stall`` (the runner's own event loop) and ``starvation`` (per-thread CPU run-queue delay).
Internal: scenarios read these through ``Scenario`` and the checks, not directly.
"""
