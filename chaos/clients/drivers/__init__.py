"""The client drivers grpc-chaos ships, one per gRPC implementation (proto/driver.proto).

Each module here knows how to run one: ``python_grpcio`` is the driver itself (grpcio in a
process of its own); ``go_build`` and ``node_build`` build or find the Go and Node drivers
whose sources sit beside them (``go/``, ``node/``). chaos/clients/builtin.py maps their
names (``--chaos-client python``) to the commands that start them.
"""
