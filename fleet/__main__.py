"""``python -m fleet up``: the same command as ``grpc-chaos fleet up`` (chaos/fleet_up.py),
kept so that scripts written for it keep working.

Putting a fleet behind a Toxiproxy server is grpc-chaos's composition, not the fleet's: the
fleet package never imports grpc-chaos, and this entry point (the one exception, checked by
tests/test_layers.py) only hands over to it.
"""

import sys

if __name__ == "__main__":
    from chaos.fleet_up import main

    sys.exit(main(prog="python -m fleet"))
