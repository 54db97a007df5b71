"""``python -m chaos.fuzz``: the fuzzer's command line (chaos/fuzz/cli.py)."""

import os
import sys

# Progress lines are for a person: gRPC's INFO lines (a GOAWAY seen, a connection closed —
# every fault makes some) would drown them. Errors still show; set GRPC_VERBOSITY to see
# more. Set before gRPC is imported, which reads it once.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from chaos.fuzz.cli import main  # noqa: E402

sys.exit(main())
