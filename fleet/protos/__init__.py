"""The generated modules of the fleet's own services: the Greeter (greeter.proto) and the
Control service (control.proto). Sources in the repository's proto/; regenerate with
``python proto/generate.py`` (``make proto``), never by hand."""
