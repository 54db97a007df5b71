#!/bin/sh
# The Debian packages examples/go-good builds from (README.md), as root; CI runs this.
# Debian 12 (bookworm): Go 1.19, grpc-go 1.33.3, golang/protobuf 1.3.5, protoc 3.21.12.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    golang-go golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler
