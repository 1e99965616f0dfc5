"""The ``harness`` command: the branch-stack lifecycle outside pytest.

``harness deploy`` deploys this branch's stack and keeps it (and, locally, the
emulator) for manual work; ``harness destroy`` removes it. Both use the same
settings table and lifecycle as the pytest plugin.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness import settings as settings_mod
from harness.errors import HarnessError
from harness.session import Lifecycle, exported_env


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("deploy", "deploy this branch's stack and keep it; print the environment to export"),
        ("destroy", "delete this branch's stack (kept or not) and stop a kept emulator"),
        ("settings", "show every setting, its value and where it came from"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        settings_mod.add_argparse_options(p)
    return parser


def _out(line: str) -> None:
    print(f"harness: {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = settings_mod.find_root(Path.cwd())
    cli = {s.name: getattr(args, s.name, None) for s in settings_mod.SETTINGS}
    try:
        s = settings_mod.resolve(cli, os.environ, root)
        if args.command == "settings":
            for key, value, source in s.describe():
                print(f"{key:<20} {value}  ({source})")
            return 0
        if args.command == "deploy":
            lifecycle = Lifecycle(replace(s, keep_stack=True), out=_out)
            info = lifecycle.start()
            lifecycle.close()
            print("# export these to use the stack:")
            for k, v in exported_env(info).items():
                print(f"export {k}={shlex.quote(v)}")
            return 0
        report = Lifecycle(s, out=_out).destroy()
        return 1 if report.leftovers or report.errors else 0
    except HarnessError as exc:
        print(f"harness: error: {exc.render()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
