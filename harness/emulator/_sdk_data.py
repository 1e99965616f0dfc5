"""The SDK's own data, read once by the warm runtime and shared by every runtime forked from it.

Loaded by ``_warm_runtime.py`` after it imports the SDK (standard library and
botocore only: it runs on every interpreter a function's runtime may resolve
to). Each botocore session reads again, with a loader of its own, the data
files every client needs whatever its service, and lists the services by
walking the SDK's data folder: in a handler that starts with
``boto3.resource("dynamodb")`` and the X-Ray SDK (whose recorder makes two
clients of its own), three sessions parse the legacy endpoint data (about
50 ms each here) and four listings stat some 1,400 folders, 0.25 s of a cold
start's 0.5 s. The same files, parsed the same way, every time.

:func:`share` parses them here once; a forked runtime's loaders get these
objects (as a loader hands every client of its session the same ones, which
botocore never changes: a client's retry configuration is a deep copy) and the
listing from one walk. Only the SDK's own folders are shared: a loader that
searches another folder that exists (``AWS_DATA_PATH``, ``~/.aws/models``), or
reads with a file loader of its own, loads as it always does. Service models
are never shared (they go to the session's ``service-data-loaded`` handlers,
which may change them). The objects live in the forked runtime's own memory
(a copy of this process's), so a change made in one runtime reaches no other.

What it leaves: a forked runtime's init is shorter than on AWS by these reads,
as it already is by the SDK's import (timing only, see docs/fidelity.md).
"""

import os

#: Data every botocore client reads, by its name in the SDK's data folder.
GLOBAL_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
JSON_EXTENSIONS = (".json", ".json.gz")


def _types_in(folder):
    """Per service folder below ``folder``: the data types (``service-2``, ``resources-1``...) any version has."""
    found = {}
    for service in os.listdir(folder):
        service_dir = os.path.join(folder, service)
        if not os.path.isdir(service_dir):
            continue
        types = set()
        for version in os.listdir(service_dir):
            version_dir = os.path.join(service_dir, version)
            if not os.path.isdir(version_dir):
                continue
            for entry in os.listdir(version_dir):
                for ext in JSON_EXTENSIONS:
                    if entry.endswith(ext) and os.path.isfile(os.path.join(version_dir, entry)):
                        types.add(entry[: -len(ext)])
        found[service] = types
    return found


def share(folders):
    """Parse the global data and walk ``folders`` (the SDK's data folders: botocore's, boto3's) once; patch
    botocore's loader classes to use them. Returns what it shares (paths parsed, folders walked)."""
    from botocore import loaders

    file_loader = loaders.JSONFileLoader()
    parsed = {}
    for name in GLOBAL_DATA:
        path = os.path.join(loaders.Loader.BUILTIN_DATA_PATH, name)
        data = file_loader.load_file(path)
        if data is not None:
            parsed[path] = data
    walked = {folder: _types_in(folder) for folder in folders if os.path.isdir(folder)}

    load_file = loaders.JSONFileLoader.load_file
    listing = loaders.Loader.list_available_services

    def shared_load_file(self, file_path):
        data = parsed.get(file_path)
        return data if data is not None else load_file(self, file_path)

    listed = {}  # (the folders searched, the type) -> the services, as botocore's listing sorts them

    def shared_list_available_services(self, type_name):
        searched = tuple(p for p in self.search_paths if os.path.isdir(p))
        if type(self.file_loader) is not loaders.JSONFileLoader or not all(p in walked for p in searched):
            return listing(self, type_name)
        key = (searched, type_name)
        if key not in listed:
            listed[key] = sorted({s for p in searched for s, types in walked[p].items() if type_name in types})
        return list(listed[key])

    shared_load_file.__doc__ = load_file.__doc__
    shared_list_available_services.__doc__ = listing.__doc__
    loaders.JSONFileLoader.load_file = shared_load_file
    loaders.Loader.list_available_services = shared_list_available_services
    return sorted(parsed), sorted(walked)
