"""Generated scenario files for the parallelism benchmark.

``write(path, n)`` writes ``n`` small YAML scenarios against the reference
stack, alternating two kinds:

* put/get: one DynamoDB ``put`` and a consistent ``get`` of the same key in the
  Audit table (it has no stream, so no Lambda runs in the background);
* http 404: ``GET /orders/{unique}-missing`` through API Gateway and the
  GetOrder function, expecting 404.

Every key starts with ``{{ unique }}`` (run, worker and test), so runs and
workers never meet.
"""

from __future__ import annotations

from pathlib import Path

PUT_GET = """\
  - name: put get {i:04d}
    steps:
      - put: {{table: AuditTableName, item: {{order_id: "{{{{ unique }}}}", event: BENCH, n: {i}}}}}
      - get: {{table: AuditTableName, key: {{order_id: "{{{{ unique }}}}", event: BENCH}}}}
        expect: {{item: {{order_id: "{{{{ unique }}}}", n: {i}}}}}
"""

HTTP_404 = """\
  - name: http 404 {i:04d}
    steps:
      - http: {{api: ApiUrl, path: "/orders/{{{{ unique }}}}-missing"}}
        expect: {{status: 404, body: {{error: order not found}}}}
"""


def render(n: int) -> str:
    parts = [f"# {n} generated scenarios (benchmarks/gen.py); safe to delete.\nscenarios:\n"]
    for i in range(n):
        parts.append((PUT_GET if i % 2 == 0 else HTTP_404).format(i=i))
    return "".join(parts)


def write(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(n))
    return path
