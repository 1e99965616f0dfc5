"""``python -m reliability [--runs N] [--cases 1,2,...] [--quick] [--out FILE] [--seed N]``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from reliability import report
from reliability.cases import MODULES, load
from reliability.support import ROOT, CaseResult, Ctx


def _cases(raw: str) -> list[int]:
    try:
        numbers = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected case numbers like 1,2,7") from None
    bad = [n for n in numbers if not 1 <= n <= len(MODULES)]
    if bad or not numbers:
        raise argparse.ArgumentTypeError(f"cases are 1..{len(MODULES)}, got {raw!r}")
    return numbers


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_case(number: int, ctx: Ctx, runs: int | None) -> CaseResult:
    """Run one case (its own registry of started processes, cleaned up whatever happens)."""
    module = load(number)
    n = runs if runs is not None else (module.QUICK_RUNS if ctx.quick else module.RUNS)
    started = time.monotonic()
    _log(f"case {number}: {module.FAULT} ({n} runs)")
    try:
        result: CaseResult = module.run(ctx, n)
    except Exception as exc:  # noqa: BLE001 - a broken case is a row, not a crash of the matrix
        result = CaseResult(
            number,
            module.FAULT,
            n,
            f"ERROR: {type(exc).__name__}: {exc}",
            "n/a",
            False,
            notes=["the case itself failed:", "```", *traceback.format_exc().splitlines(), "```"],
        )
    finally:
        ctx.registry.cleanup()
    result.seconds = time.monotonic() - started
    _log(f"case {number}: {'ok' if result.ok else 'FAILED'}: {result.result}; {result.figure} ({result.seconds:.0f}s)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    p.add_argument("--runs", type=int, default=None, help="runs per case (default: each case's own count)")
    p.add_argument("--cases", type=_cases, default=list(range(1, len(MODULES) + 1)), help="e.g. 1,2,7")
    p.add_argument("--quick", action="store_true", help="small counts (CI)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown report (default: docs/reliability.md; with --quick: harness-report/reliability-quick.md)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (printed; default: random)")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp projects and logs")
    p.add_argument("--merge", action="store_true", help="keep the other rows of an existing report (re-run some rows)")
    args = p.parse_args(argv)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")  # unwind: every case stops what it started, by pid

    signal.signal(signal.SIGTERM, on_sigterm)
    # Started in the background (`make reliability &`), SIGINT arrives ignored, and the
    # sessions would inherit that: case 2 would then test an ignored Ctrl-C. Catch it here,
    # so the children start with the default disposition, like a run from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.out is None:
        args.out = ROOT / ("harness-report/reliability-quick.md" if args.quick else "docs/reliability.md")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    base = Path(tempfile.mkdtemp(prefix="reliability-"))
    started_at = dt.datetime.now(dt.UTC)
    load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    _log(f"reliability: seed {seed}, work folder {base}")
    results: list[CaseResult] = []
    interrupted = False
    try:
        for number in args.cases:
            ctx = Ctx(base=base / f"case{number}", rng=random.Random(seed * 100 + number), quick=args.quick, log=_log)
            ctx.base.mkdir(parents=True)
            results.append(run_case(number, ctx, args.runs))
    except KeyboardInterrupt:
        _log("reliability: interrupted; writing what ran")
        interrupted = True
    finally:
        total = time.monotonic() - started
        if results:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            previous = args.out.read_text() if args.merge and args.out.exists() else None
            args.out.write_text(
                report.render(
                    results,
                    command=report.command_line(),
                    seed=seed,
                    total_seconds=total,
                    started=started_at,
                    previous=previous,
                    load=(load_at_start, os.getloadavg()[0]),
                )
            )
            _log(f"reliability: wrote {args.out} ({total / 60:.1f} min)")
        if args.keep_temp:
            _log(f"reliability: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if interrupted:
        return 130
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
