"""The fleet under test: backends, PKI, DNS, controller."""
