"""Summarize the verdicts a scenario run left in its artifacts directory.

    python -m chaos.report [chaos-artifacts] [--profile recommended]

For every (profile, scenario, check) it prints how often the check passed and its figure
(min / median / max over the runs found, e.g. after repeated runs with --count or a loop),
next to the bound. Reads ``<dir>/<profile>/<scenario>/verdicts.json``; runs that overwrote
each other count once, so point it at the directories of separate runs (the
--chaos-artifacts option of each) to aggregate them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def collect(roots: list[Path], profile: str | None = None) -> dict[tuple, list[dict]]:
    """(profile, scenario, check) -> every verdict of that check found under ``roots``."""
    found: dict[tuple, list[dict]] = defaultdict(list)
    for root in roots:
        for path in sorted(root.glob("*/*/verdicts.json")):
            run_profile, scenario = path.parent.parent.name, path.parent.name
            if profile and run_profile != profile:
                continue
            for verdict in json.loads(path.read_text()):
                found[(run_profile, scenario, verdict["name"])].append(verdict)
    return found


def table(found: dict[tuple, list[dict]]) -> str:
    lines = [f"{'profile':<12} {'scenario':<70} {'check':<16} {'passed':>7} "
             f"{'min':>9} {'median':>9} {'max':>9} {'bound':>10}"]
    for (profile, scenario, check), verdicts in sorted(found.items()):
        figures = [v["figure"] for v in verdicts if v["figure"] is not None]
        unit = verdicts[0]["unit"]
        bound = verdicts[0]["bound"]
        stats = ((f"{min(figures):9.3g}", f"{statistics.median(figures):9.3g}",
                  f"{max(figures):9.3g}") if figures else ("n/a",) * 3)
        passed = f"{sum(v['passed'] for v in verdicts)}/{len(verdicts)}"
        bound_text = "" if bound is None else f"{verdicts[0].get('comparison', '<=')} {bound:g}"
        name = scenario.split("py_", 1)[-1][:70]
        lines.append(f"{profile:<12} {name:<70} {check:<16} {passed:>7} "
                     f"{stats[0]:>9} {stats[1]:>9} {stats[2]:>9} {bound_text:>7} {unit}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", type=Path, default=[Path("chaos-artifacts")],
                        help="artifacts directories (default: chaos-artifacts)")
    parser.add_argument("--profile", help="only this profile")
    args = parser.parse_args(argv)
    missing = [d for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"chaos.report: no artifacts directory {missing[0]}", file=sys.stderr)
        return 2
    found = collect(args.dirs, args.profile)
    if not found:
        print(f"chaos.report: no verdicts.json under {', '.join(map(str, args.dirs))}",
              file=sys.stderr)
        return 1
    print(table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
