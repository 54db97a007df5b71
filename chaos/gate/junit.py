"""junit.xml of a run: every pytest run's JUnit file in one, with ``<properties>``.

Each (profile, repeat) becomes one ``<testsuite name="<profile> repeat <k>">`` whose
properties name the profile (and its sha256), the repeat, the requirements and the
target; each ``<testcase>`` gets the scenario's outcome and every figure as properties::

    <property name="chaos_profile" value="naive"/>
    <property name="chaos_outcome" value="fail"/>
    <property name="chaos_errors" value="fail 10 rpcs bound <= 0"/>

When the gate ran several clients (``--client``), each suite is one (client, profile,
repeat), named by its column ("recommended · grpc-go 1.33.3 repeat 1"); each testcase's
name ends with its client ("test_x [grpc-go 1.33.3]": CI readers that key tests by class
and name keep the clients apart), and suite and testcase carry the client::

    <property name="chaos_client" value="go"/>
    <property name="chaos_client_implementation" value="grpc-go"/>
    <property name="chaos_client_version" value="1.33.3"/>

A run of one client other than the in-process one carries these properties too; a run of
the in-process client alone is written exactly as before clients existed.

(testcase properties are outside the strict xunit2 schema; CI readers of JUnit accept
them, and the suite's properties carry the essentials too.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from chaos.gate import aggregate


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


def _client_properties(info: dict) -> list[tuple[str, str]]:
    return [
        ("chaos_client", info["name"]),
        ("chaos_client_implementation", info["implementation"] or ""),
        ("chaos_client_version", info["version"] or ""),
    ]


def merge(
    runs,
    records: list[dict],
    suite_properties: dict,
    out: Path,
    columns: list[aggregate.Column] | None = None,
) -> Path:
    """Write ``out`` from each pytest run's JUnit file (runs: chaos/gate/pytest_run.py);
    ``columns`` (aggregate.columns()) name the clients when there are several."""
    root = ElementTree.Element("testsuites", name="grpc-chaos gate")
    by_case = {(aggregate.column_of(r), r["repeat"], testcase_key(r["nodeid"])): r for r in records}
    columns = columns or aggregate.columns(records)
    by_id = {c.id: c for c in columns}
    clients = list(dict.fromkeys(c.client for c in columns))
    named = clients != [aggregate.INPROCESS]  # the default alone: written as it always was
    for run in runs:
        column = by_id.get(
            aggregate.column_id(run.profile_name, run.client_name),
            aggregate.Column(run.profile_name, run.client_name),
        )
        info = aggregate.client_info(records, run.client_name)
        client_props = _client_properties(info) if named else []
        path = run.file("xml")
        if not path.is_file():
            continue
        try:
            suites = ElementTree.parse(path).getroot().iter("testsuite")
        except ElementTree.ParseError:  # a child killed while writing it
            continue
        for suite in suites:
            suite.set("name", f"{column.label} repeat {run.repeat}")
            _properties(
                suite,
                [
                    ("chaos_profile", run.profile_name),
                    *client_props,
                    ("chaos_repeat", run.repeat),
                    *suite_properties.items(),
                ],
            )
            for case in suite.iter("testcase"):
                key = (case.get("classname", ""), case.get("name", ""))
                record = by_case.get((column.id, run.repeat, key))
                if column.client_label:  # several clients
                    case.set("name", f"{key[1]} [{column.client_label}]")
                if record is not None:
                    _properties(
                        case,
                        [
                            ("chaos_profile", run.profile_name),
                            *client_props,
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
