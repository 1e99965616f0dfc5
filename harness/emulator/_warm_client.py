"""A function runtime's launcher: the runtime forked from the warm runtime of its interpreter, else started afresh.

Run by the emulator (through the interpreter's shim) as
``python -I -S _warm_client.py ADDRESS WORKER_SCRIPT``; standard library only.
It hands its argument vector, working folder, environment and standard
streams to the warm runtime listening at the abstract Unix socket ``ADDRESS``
(``_warm_runtime.py``), waits for the forked runtime to end and exits with its
status: to the emulator it is the runtime's process (killing it ends the
runtime). Where no warm runtime answers (not started yet, or gone), it
``exec``s the interpreter on the worker script: the cold start as before.
"""

import os
import socket
import struct
import sys

REPLY = struct.Struct("!ci")


def _afresh(argv):
    os.execv(sys.executable, [sys.executable, "-I", "-S"] + argv)


def _reply(conn):
    data = b""
    while len(data) < REPLY.size:
        chunk = conn.recv(REPLY.size - len(data))
        if not chunk:
            return None
        data += chunk
    return REPLY.unpack(data)


def main():
    address, argv = sys.argv[1], sys.argv[2:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    try:
        conn.connect("\0" + address)
    except OSError:
        conn.close()
        _afresh(argv)
    import marshal

    # No time limit from here: once the streams are sent, the warm runtime may fork a runtime on them, so
    # this process must not start another. A warm runtime still importing the SDK answers once it has; one
    # that ended answers nothing (the connection ends: started afresh below).
    conn.settimeout(None)
    body = marshal.dumps((argv, os.getcwd(), dict(os.environ)))
    try:
        socket.send_fds(conn, [struct.pack("!I", len(body)) + body], [0, 1, 2])
        started = _reply(conn)
    except OSError:
        started = None
    if started is None or started[0] != b"P":
        conn.close()
        _afresh(argv)  # nothing was forked for this request
    # The runtime holds the streams now; this process keeps none open, so the emulator
    # sees them end when the runtime ends.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        ended = _reply(conn)
    except OSError:
        ended = None
    if ended is not None and ended[0] == b"X":
        code = ended[1]
        if code < 0:  # ended by a signal: end the same way
            import signal

            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)
    # The warm runtime went away first: wait for the runtime itself.
    import select

    try:
        select.select([os.pidfd_open(started[1])], [], [])
    except OSError:
        pass
    os._exit(1)


main()
