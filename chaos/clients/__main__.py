"""``grpc-chaos client NAME|COMMAND [--profile P ...]``: what a client driver is and what
of each profile it will honour — before any scenario runs.

    grpc-chaos client go --profile recommended --profile recommended-go

prints the implementation and version, the portable settings, LB policies, retries and
health checking it honours, its notes, and per profile every setting it will not honour
with what it does instead. Exit 0 when every profile is honoured in full, 1 when some
setting is not, 4 when the driver cannot be started or an argument is wrong.
"""

from __future__ import annotations

import argparse
import sys

from chaos import profiles
from chaos.clients import builtin
from chaos.clients.config import unhonoured
from chaos.clients.driver import Driver, DriverError
from chaos.outcomes import Exit, UsageError, UsageParser


def parser(prog: str) -> argparse.ArgumentParser:
    p = UsageParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("client", metavar="NAME|COMMAND", help="python, go, node, or a command")
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="P",
        help="a shipped profile name or a JSON file (repeat for several)",
    )
    return p


def main(argv: list[str] | None = None, prog: str = "grpc-chaos client") -> int:
    try:
        args = parser(prog).parse_args(argv)
        loaded = [profiles.load(p) for p in args.profile]
        command = builtin.resolve(args.client)
        if command is None:
            raise UsageError("inprocess is grpcio in the runner: it honours every profile")
        with Driver(command.argv, command.name, env=command.env, cwd=command.cwd) as driver:
            caps = driver.capabilities
            assert caps is not None  # set by start()
            print(driver.describe)
            print(f"  settings: {', '.join(caps.settings) or 'none'}")
            print(f"  options by name: {', '.join(caps.options) or 'none'}")
            print(f"  LB policies: {', '.join(caps.lb_policies)}")
            print(f"  retries: {'yes' if caps.retries else 'no'}; client-side health "
                  f"checking: {'yes' if caps.health_check else 'no'}; attempts per backend: "
                  f"{'yes' if caps.subchannels else 'no'}")  # fmt: skip
            for note in caps.notes:
                print(f"  note: {note}")
            missing = False
            for profile in loaded:
                problems = unhonoured(profile, caps)
                missing = missing or bool(problems)
                print(f"profile {profile.name}: " + ("honoured" if not problems else ""))
                for problem in problems:
                    print(f"  not honoured: {problem}")
        return Exit.FAIL if missing else Exit.PASS
    except (UsageError, profiles.ProfileError, DriverError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return Exit.USAGE


if __name__ == "__main__":
    sys.exit(main(prog="python -m chaos.clients"))
