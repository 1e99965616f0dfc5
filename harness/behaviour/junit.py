"""A scenario whose behaviour changed under ``behaviour = gate`` fails its JUnit test case too.

pytest writes the JUnit XML before the traces are collected (they are read
once every test has ended), so the file is amended afterwards: each gated
case gets a ``<failure>`` listing the differences, and its suite's
``failures`` count goes up. Cases are found by pytest's own naming
(``scenarios/orders.yaml::a name`` -> classname ``scenarios.orders.yaml``, name
``a name``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path


def junit_names(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes them for a node id (without a --junit-prefix)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def fail_cases(xml_path: Path, failures: Mapping[str, Sequence[str]]) -> list[str]:
    """Add a failure to each case of ``failures`` (node id -> difference lines); return the ids not found."""
    tree = ET.parse(xml_path)
    wanted = {junit_names(n): n for n in failures}
    found: set[str] = set()
    suites = [tree.getroot()] if tree.getroot().tag == "testsuite" else list(tree.getroot().iter("testsuite"))
    for suite in suites:
        for case in suite.iter("testcase"):
            classname = case.get("classname", "")
            key = next((k for k in wanted if k[1] == case.get("name") and classname.endswith(k[0])), None)
            if key is None:
                continue
            nodeid = wanted[key]
            found.add(nodeid)
            already = case.find("failure") is not None or case.find("error") is not None
            failure = ET.SubElement(case, "failure", message="behaviour changed from the committed snapshot")
            failure.text = "\n".join(failures[nodeid])
            if not already:
                suite.set("failures", str(int(suite.get("failures", "0")) + 1))
    tree.write(xml_path, encoding="utf-8", xml_declaration=True)
    return sorted(set(failures) - found)
