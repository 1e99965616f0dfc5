"""The warm runtime of one interpreter: the SDK imported once, each function's runtime forked from it.

Run by the emulator as ``python -I -S _warm_runtime.py ADDRESS SDK EMULATOR_PID``
(see ``harness.emulator.warm_start``); standard library only, and it must run on
every interpreter a function's runtime may resolve to.

It listens on the abstract Unix socket ``ADDRESS``, then imports the runtime's
SDK (boto3 and botocore, from the ``SDK`` folder, the one a function's
``sys.path`` ends with); a launcher that connects meanwhile waits. A runtime's
launcher (``_warm_client.py``, what the emulator starts for a function; only
the emulator's own children of this user are served) connects and sends its argument vector, working folder,
environment and standard streams; this process forks, and the child becomes
that runtime: the streams on 0, 1 and 2, the folder, the environment, the
worker script run as ``__main__``. The child's exit status goes back to the
launcher, which exits with it.

A function that could see another copy of anything this process imported (a
bundled or layered ``boto3``, ``urllib3``, ``six``... or a module the SDK only
tried to import, such as ``awscrt``) does not get the warm image: the launcher
is told to ``exec`` the interpreter afresh, a cold start exactly as without
this process.

It also parses once the SDK's own data every botocore session reads again
(``_sdk_data.py``), and then freezes what it holds out of its children's
garbage collections (``gc.freeze``: a collection in a child would otherwise
touch, and so copy, every page of it); what it makes later, serving
launchers, stays collectable.

The process ends with the emulator (a pidfd on it), killing its children; a
child ends when its launcher or the emulator ends (pidfds in a low-level
thread), as a runtime the emulator started itself does.
"""

import gc
import os
import select
import socket
import struct
import sys

ADDRESS, SDK, EMULATOR = sys.argv[1], sys.argv[2], int(sys.argv[3])
STDLIB = list(sys.path)  # -I -S: the standard library only
HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = struct.Struct("!I")  # a request's length
REPLY = struct.Struct("!ci")  # P <pid> (forked), F 0 (start afresh), X <exit code> (ended): as _warm_client.py


class _Looked:
    """Records every top-level module name looked up while the SDK is imported (found or not)."""

    def __init__(self):
        self.names = set()

    def find_spec(self, fullname, path=None, target=None):
        self.names.add(fullname.partition(".")[0])
        return None


def _preload():
    looked = _Looked()
    before = set(sys.modules)
    sys.meta_path.insert(0, looked)
    sys.path[:] = [SDK] + STDLIB
    try:
        import boto3  # noqa: F401
        import boto3.dynamodb.types  # noqa: F401
        import boto3.session  # noqa: F401
        import botocore.client  # noqa: F401
        import botocore.exceptions  # noqa: F401
        import botocore.handlers  # noqa: F401

        _share_sdk_data()
    finally:
        sys.meta_path.remove(looked)
        sys.path[:] = STDLIB
    return looked.names | {m.partition(".")[0] for m in set(sys.modules) - before}


def _share_sdk_data():
    """The SDK's own data files parsed once here for every forked runtime (``_sdk_data.py``); without it on
    any error (an SDK it does not know): each runtime then reads them itself, as before."""
    import importlib.util

    try:
        spec = importlib.util.spec_from_file_location("_harness_sdk_data", os.path.join(HERE, "_sdk_data.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        import boto3
        import botocore.loaders

        boto3_data = os.path.join(os.path.dirname(boto3.__file__), "data")
        module.share([botocore.loaders.Loader.BUILTIN_DATA_PATH, boto3_data])
    except Exception:  # noqa: BLE001 - an optimisation: never the reason a runtime fails
        pass


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _receive(conn):
    """(argv, cwd, env, fds) from a launcher, or None."""
    import marshal

    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) != 3 or len(data) < HEADER.size:
        for fd in fds:
            os.close(fd)
        return None
    (size,) = HEADER.unpack_from(data)
    data = data[HEADER.size :]
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None
        data += chunk
    argv, cwd, env = marshal.loads(data)
    return argv, cwd, env, fds


def _sees_another_copy(cwd, env, names):
    """Whether the function's own folders (its code, its layers) hold a module named as one imported here."""
    layers = [d for d in env.get("_LAMBDA_LAYERS_DIRS", "").split(os.pathsep) if d]
    version = "python{}.{}".format(*sys.version_info[:2])
    folders = [cwd]
    folders += [os.path.join(d, "python", "lib", version, "site-packages") for d in layers]
    folders += [os.path.join(d, "python") for d in layers]
    for folder in folders:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        if any(entry.partition(".")[0] in names for entry in entries):
            return True
    return False


def _end_with(fds):
    import _thread

    def wait():
        select.select(fds, [], [])
        os._exit(1)

    _thread.start_new_thread(wait, ())  # a low-level thread: not in the function's threading.enumerate()


def _become(request, client, emulator_fd):
    """In the forked child: become the runtime the launcher asked for; returns the worker script's path."""
    argv, cwd, env, fds = request
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if hasattr(os, "environb"):  # a separate copy of the same environment
        os.environb.clear()
        os.environb.update((os.fsencode(k), os.fsencode(v)) for k, v in env.items())
    os.environ.pop("HARNESS_EMULATOR_PID", None)  # this child's watch is here, not the prelude's
    try:
        client_fd = os.pidfd_open(client)
    except OSError:
        os._exit(1)
    _end_with([client_fd, emulator_fd])
    sys.argv[:] = argv
    return argv[0]


def _listen():
    """(the emulator's pidfd, the listening socket); launchers that connect now wait for the SDK's import."""
    emulator_fd = os.pidfd_open(EMULATOR)
    if os.getppid() != EMULATOR:  # that pid is someone else's now: the emulator is gone
        sys.exit(0)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind("\0" + ADDRESS)
    except OSError:
        sys.exit(0)  # another warm runtime of this interpreter answers there already
    server.listen(64)
    return emulator_fd, server


def _serve(emulator_fd, server, names):
    """Fork runtimes until the emulator ends; in a child, return the worker script's path."""
    children = {}  # pidfd -> (pid, conn)
    while True:
        readable, _, _ = select.select([server, emulator_fd] + list(children), [], [])
        if emulator_fd in readable:
            for pid, _conn in children.values():
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            os._exit(0)
        for fd in [fd for fd in readable if fd in children]:
            pid, conn = children.pop(fd)
            os.close(fd)
            _, status = os.waitpid(pid, 0)
            try:
                conn.sendall(REPLY.pack(b"X", os.waitstatus_to_exitcode(status)))
            except OSError:
                pass
            conn.close()
        if server not in readable:
            continue
        conn, _ = server.accept()
        conn.settimeout(5)
        pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        request = None
        if uid == os.getuid() and _ppid(pid) == EMULATOR:  # only the emulator's own launchers
            try:
                request = _receive(conn)
            except (OSError, ValueError, EOFError, TypeError):
                request = None
        if request is None:
            conn.close()
            continue
        if _sees_another_copy(request[1], request[2], names):
            for fd in request[3]:
                os.close(fd)
            try:
                conn.sendall(REPLY.pack(b"F", 0))  # the launcher starts this one afresh
            except OSError:
                pass
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            server.close()
            for fd, (_pid, other) in children.items():
                os.close(fd)
                other.close()
            conn.close()
            return _become(request, pid, emulator_fd)
        for fd in request[3]:
            os.close(fd)
        try:
            children[os.pidfd_open(child)] = (child, conn)
            conn.sendall(REPLY.pack(b"P", child))
        except OSError:
            pass


def _run_as_main(script):
    """Run the worker script as ``python script`` would: a fresh ``__main__`` module, its path as its file."""
    import types

    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    with open(script, "rb") as f:
        code = compile(f.read(), script, "exec")
    exec(code, main.__dict__)  # noqa: S102 - the emulator's worker script, as the interpreter would run it


if __name__ == "__main__":
    _emulator_fd, _server = _listen()
    _names = _preload()
    gc.freeze()  # the SDK and its data stay out of the children's collections (they would copy every page of it)
    _run_as_main(_serve(_emulator_fd, _server, _names))
