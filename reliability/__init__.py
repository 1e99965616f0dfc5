"""The harness's fault matrix: real pytest sessions in throw-away projects, faults injected, results measured.

``python -m reliability [--runs N] [--cases 1,2,...] [--quick]`` runs the cases
in ``reliability/cases/`` against MiniStack emulators (started here, on free
loopback ports, stopped by pid) and writes ``docs/reliability.md``.

Each case module has ``NUMBER``, ``FAULT``, ``RUNS`` (full), ``QUICK_RUNS`` and
``run(ctx, runs) -> CaseResult``; see ``reliability.support`` for the helpers.
"""
