"""``python -m chaos <command>`` and the ``grpc-chaos`` console script.

grpc-chaos gate ...     the pre-release gate (chaos/gate/cli.py)
grpc-chaos fuzz ...     fuzz fault schedules, shrink and replay a failure (chaos/fuzz/cli.py)
grpc-chaos fleet up ... a fleet for people and other tools, until Ctrl-C (chaos/fleet_up.py)
grpc-chaos client ...   a client driver and what of a profile it honours (chaos/clients/)
grpc-chaos audit ...    which settings of a profile are needed (chaos/audit/cli.py)
"""

from __future__ import annotations

import sys

COMMANDS = {
    "gate": "the pre-release resilience gate: run scenarios, judge, report",
    "fuzz": "search fault schedules for one the client fails; shrink it, replay it",
    "fleet": "fleet up: start a fleet (TLS backends, proxies, DNS) for other tools",
    "client": "a client driver: what it is, what of each profile it honours",
    "audit": "mutation-test a profile: which settings are needed, which do nothing",
}
USAGE = 4  # chaos/gate/exits.py: a usage error


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: grpc-chaos COMMAND [ARGS]\n\ncommands:\n"
            + "\n".join(f"  {name:<6} {what}" for name, what in COMMANDS.items())
        )
        return 0 if argv else USAGE
    if argv[0] not in COMMANDS:
        print(
            f"grpc-chaos: error: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return USAGE
    # Imported on use: each command pulls in grpc and its own modules.
    if argv[0] == "fuzz":
        from chaos.fuzz.cli import main as fuzz

        return fuzz(argv[1:], prog="grpc-chaos fuzz")
    if argv[0] == "client":
        from chaos.clients.__main__ import main as client

        return client(argv[1:], prog="grpc-chaos client")
    if argv[0] == "audit":
        from chaos.audit.cli import main as audit

        return audit(argv[1:], prog="grpc-chaos audit")
    if argv[0] == "fleet":
        from chaos.fleet_up import main as fleet

        return fleet(argv[1:], prog="grpc-chaos fleet")
    from chaos.gate.cli import main as gate

    return gate(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
