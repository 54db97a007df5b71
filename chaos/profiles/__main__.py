"""``python -m chaos.profiles``: check profiles before a run, list the shipped ones.

    python -m chaos.profiles check FILE|NAME [...]   every problem, one line each,
                                                     prefixed with the file; exit 0 when
                                                     all are valid, 4 when any has an error
    python -m chaos.profiles list                    shipped names + their description

Usage errors (no subcommand, unknown subcommand, ``check`` without a profile) exit 2.
"""

from __future__ import annotations

import argparse
import sys

from chaos import profiles

EXIT_OK, EXIT_USAGE, EXIT_INVALID = 0, 2, 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.profiles", description="Check grpc-chaos client profiles."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="check profiles (files or shipped names)")
    check.add_argument("profiles", nargs="+", metavar="FILE|NAME")
    commands.add_parser("list", help="the shipped profiles")
    args = parser.parse_args(argv)
    if args.command == "list":
        return list_shipped()
    return check_profiles(args.profiles)


def list_shipped() -> int:
    names = profiles.shipped()
    width = max(map(len, names))
    for name in names:
        description = profiles.load(name, check=False).description
        print(f"{name:<{width}}  {description}")
    return EXIT_OK


def check_profiles(names: list[str]) -> int:
    """Check every profile (one gRPC parser process for all); print each problem."""
    readable = {}
    invalid = False
    for name in names:
        try:
            readable[name] = profiles.read(name)[1]
        except profiles.ProfileError as exc:
            print(f"{name}: {exc}")
            invalid = True
    for name, problems in zip(readable, profiles.check_many(list(readable.values())), strict=False):
        for problem in problems:
            print(f"{name}: {problem}")
        if any(p.is_error for p in problems):
            invalid = True
        else:
            print(f"{name}: ok ({_summary(profiles.parse(readable[name], name, check=False))})")
    return EXIT_INVALID if invalid else EXIT_OK


def _summary(profile: profiles.Profile) -> str:
    count = len(profile.channel_options)
    return f"policy {profile.declared_policy}, {count} channel option{'' if count == 1 else 's'}"


if __name__ == "__main__":
    sys.exit(main())
