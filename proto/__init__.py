"""Protocol definitions (greeter.proto, control.proto) and their generated modules."""
