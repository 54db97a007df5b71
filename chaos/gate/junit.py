"""junit.xml of a run: every pytest run's JUnit file in one, with ``<properties>``.

Each (profile, repeat) becomes one ``<testsuite name="<profile> repeat <k>">`` whose
properties name the profile (and its sha256), the repeat, the requirements and the
target; each ``<testcase>`` gets the scenario's outcome and every figure as properties::

    <property name="chaos_profile" value="naive"/>
    <property name="chaos_outcome" value="fail"/>
    <property name="chaos_errors" value="fail 10 rpcs bound <= 0"/>

(testcase properties are outside the strict xunit2 schema; CI readers of JUnit accept
them, and the suite's properties carry the essentials too.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path


def testcase_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes them for a node id."""
    path, *names = nodeid.split("::")
    parts = path.removesuffix(".py").replace("\\", "/").split("/") + names
    return ".".join(parts[:-1]), parts[-1]


def _properties(element, pairs) -> None:
    holder = element.find("properties")
    if holder is None:
        holder = ElementTree.Element("properties")
        element.insert(0, holder)
    for name, value in pairs:
        ElementTree.SubElement(holder, "property", name=name, value=str(value))


def _figure(verdict: dict) -> str:
    figure = "n/a" if verdict["figure"] is None else f"{verdict['figure']:.6g}"
    bound = (
        ""
        if verdict["bound"] is None
        else f" bound {verdict.get('comparison', '<=')} {verdict['bound']:.6g}"
    )
    return f"{verdict['outcome']} {figure} {verdict['unit']}{bound}"


def merge(runs, records: list[dict], suite_properties: dict, out: Path) -> Path:
    """Write ``out`` from each pytest run's JUnit file (runs: chaos/gate/pytest_run.py)."""
    root = ElementTree.Element("testsuites", name="grpc-chaos gate")
    by_case = {(r["profile"]["name"], r["repeat"], testcase_key(r["nodeid"])): r for r in records}
    for run in runs:
        path = run.file("xml")
        if not path.is_file():
            continue
        try:
            suites = ElementTree.parse(path).getroot().iter("testsuite")
        except ElementTree.ParseError:  # a child killed while writing it
            continue
        for suite in suites:
            suite.set("name", f"{run.profile_name} repeat {run.repeat}")
            _properties(
                suite,
                [
                    ("chaos_profile", run.profile_name),
                    ("chaos_repeat", run.repeat),
                    *suite_properties.items(),
                ],
            )
            for case in suite.iter("testcase"):
                key = (case.get("classname", ""), case.get("name", ""))
                record = by_case.get((run.profile_name, run.repeat, key))
                if record is not None:
                    _properties(
                        case,
                        [
                            ("chaos_profile", run.profile_name),
                            ("chaos_outcome", record["outcome"]),
                            *(
                                (f"chaos_{v['name']}", _figure(v))
                                for v in record.get("verdicts") or []
                            ),
                        ],
                    )
            root.append(suite)
    ElementTree.indent(root)
    ElementTree.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
