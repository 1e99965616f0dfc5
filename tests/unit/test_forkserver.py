"""The fork server: each run is a child forked from a process that imported beforehand; nothing outlives its owner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import procs
from harness.forkserver import CRASHED

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _server(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (forking inside the test process would copy pytest)."""
    path = tmp_path / "owner.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )


#: The end of an owner script whose ``server`` runs one run: SIGTERM to the child as soon as it is named, then
#: the run's exit code printed (``code -15`` when the signal stopped it).
STOPPED_AS_SOON_AS_NAMED = """
        def stop():
            while server.child is None:
                time.sleep(0.01)
            server.signal_child(signal.SIGTERM)  # as soon as the child is named

        threading.Thread(target=stop).start()
        print("code", server.run(), flush=True)
        server.close()
        """


def test_each_run_is_a_fresh_child_of_the_warmed_server_with_its_exit_code(tmp_path: Path) -> None:
    done = _server(
        """
        import os, sys
        from harness.forkserver import ForkServer

        def warm():
            import json  # imported once, in the server
            sys.modules["json"].WARMED_IN = os.getpid()

        def run():
            import json
            state = getattr(sys, "_runs", 0)
            sys._runs = state + 1  # a child's changes never reach the next child
            import gc
            print("child", os.getpid(), "server", os.getppid(), "warmed", json.WARMED_IN, "runs", sys._runs,
                  "frozen", gc.get_freeze_count() > 0, flush=True)
            return 5 if os.environ.get("FAIL") else 0

        server = ForkServer(warm=warm, run=run)
        print("codes", server.run(), server.run(), flush=True)
        os.environ["FAIL"] = "1"  # the owner's environment is not the server's: still 0
        print("after", server.run(), flush=True)
        server.close()
        print("server", server.pid, flush=True)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    children = [line.split() for line in lines if line.startswith("child")]
    assert len(children) == 3
    server = int(lines[-1].split()[1])
    assert {int(c[3]) for c in children} == {server}  # every run forked by the server
    assert {int(c[5]) for c in children} == {server}  # the import made once, in the server
    assert len({c[1] for c in children}) == 3  # a child each
    assert {c[7] for c in children} == {"1"}
    assert {c[9] for c in children} == {"True"}  # the server's heap is frozen: a child's collections skip it
    assert "codes 0 0" in lines and "after 0" in lines
    assert not procs.pid_alive(server)


def test_a_run_that_raises_or_exits_gives_its_code_and_the_server_goes_on(tmp_path: Path) -> None:
    done = _server(
        """
        import sys
        from pathlib import Path
        from harness.forkserver import ForkServer

        def run():
            seen = Path("runs.txt")  # the server never changes: each child reads which run it is from a file
            n = len(seen.read_text()) if seen.exists() else 0
            seen.write_text("x" * (n + 1))
            what = ["raise", "exit", "none", "ok"][n]
            if what == "raise":
                raise ValueError("boom")
            if what == "exit":
                sys.exit(7)
            if what == "none":
                sys.exit()
            return 0

        server = ForkServer(warm=lambda: None, run=run)
        print("codes", [server.run() for _ in range(4)], flush=True)
        server.close()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"codes [{CRASHED}, 7, 0, 0]" in done.stdout
    assert "ValueError: boom" in done.stderr


def test_a_failing_warm_up_is_left_to_the_run(tmp_path: Path) -> None:
    done = _server(
        """
        from harness.forkserver import ForkServer

        def warm():
            import no_such_module_here  # noqa: F401

        def run():
            import no_such_module_here  # noqa: F401

        server = ForkServer(warm=warm, run=run)
        print("code", server.run(), flush=True)
        server.close()
        """,
        tmp_path,
    )
    assert f"code {CRASHED}" in done.stdout, done.stderr
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in done.stderr


def test_the_server_ends_when_its_owner_is_killed(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from harness.forkserver import ForkServer\n"
            "s = ForkServer(warm=lambda: None, run=lambda: 0)\n"
            "print(s.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        assert procs.pid_alive(server)
        owner.kill()
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while procs.pid_alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.pid_alive(server)
    finally:
        procs.stop_tree(owner.pid)


def test_a_stop_signal_reaches_the_running_child_and_its_code_says_so(tmp_path: Path) -> None:
    done = _server(
        """
        import os, signal, time, threading
        from harness.forkserver import ForkServer

        def run():
            time.sleep(30)
            return 0

        server = ForkServer(warm=lambda: None, run=run)
        """
        + STOPPED_AS_SOON_AS_NAMED,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"code {-15}" in done.stdout


def test_a_stop_signal_sent_before_the_child_has_its_handlers_back_still_stops_it(tmp_path: Path) -> None:
    """The child starts with the server's dispositions (stop signals ignored) until it restores its own: a signal
    the owner sends in that window is held for the child's handler, not lost (the run would go on to its end)."""
    done = _server(
        """
        import os, signal, time, threading
        import harness.forkserver as fs

        real_child = fs._child

        def slow_child(run, handlers):
            time.sleep(0.5)  # the window, widened: forked, handlers not restored yet
            real_child(run, handlers)

        fs._child = slow_child

        def run():
            time.sleep(5)
            return 0

        server = fs.ForkServer(warm=lambda: None, run=run)
        """
        + STOPPED_AS_SOON_AS_NAMED,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"code {-15}" in done.stdout
