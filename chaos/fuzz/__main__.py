"""``python -m chaos.fuzz``: the fuzzer's command line (chaos/fuzz/cli.py)."""

import sys

from chaos.fuzz.cli import main

sys.exit(main())
