"""Resolution: every setting once, command-line flag > environment variable > [tool.harness] > default.

:func:`resolve` records where each value came from (``"cli"``,
``"env HARNESS_X"``, ``"pyproject.toml"`` or ``"default"``) so that the pytest
header can show it. Unknown ``[tool.harness]`` keys and bad values are refused
with a :class:`~harness.errors.ConfigError` that names the setting, where the
value came from, the value itself and what would have been accepted. All
problems are collected and reported together, not one per run.

An empty environment variable counts as unset. Environment variables with the
``HARNESS_`` prefix that are not in the table are ignored (other tools, such as
the Harness CI platform, use that prefix too), except that one spelt almost
like a setting's variable (``HARNESS_TAGRET``) gets a warning in
``Settings.notices``: a typo must not silently run against the wrong target.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, Invalid, closest
from harness.settings.convert import PYPROJECT, TABLE, Context, Origin
from harness.settings.table import BY_KEY, BY_NAME, SETTINGS, Setting, Settings
from harness.urls import redact


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding a pyproject.toml, else ``start``."""
    start = Path(start).resolve()
    base = start if start.is_dir() or not start.exists() else start.parent
    for directory in (base, *base.parents):
        if (directory / PYPROJECT).is_file():
            return directory
    return start


def _read_pyproject(path: Path) -> dict[str, Any] | None:
    """The file's TOML; None if it does not exist. Raises OSError, or ValueError for a file that is not TOML
    (``tomllib.TOMLDecodeError``)."""
    import tomllib  # when settings are resolved (pytest has it by then: it reads its own configuration)

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return None


def default_app(root: Path) -> str:
    """App name when none is configured: [project].name, else the root folder name.

    Lowercased; characters that are not allowed in an app name become ``-``,
    leading non-letters are dropped and the result is cut to 30 characters.
    """
    name: object = None
    try:
        data = _read_pyproject(Path(root) / PYPROJECT)
    except (OSError, ValueError):
        data = None
    if data is not None:
        project = data.get("project")
        if isinstance(project, dict):
            name = project.get("name")
    if not isinstance(name, str) or not name.strip():
        name = Path(root).resolve().name
    assert isinstance(name, str)
    slug = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower())
    slug = re.sub(r"^[^a-z]+", "", slug)[:30].rstrip("-")
    return slug or "app"


def _where(setting: Setting, origin: Origin, pyproject: Path) -> str:
    if origin == "cli":
        return f"{setting.flag} (command line)"
    if origin == "env":
        return f"{setting.env} (environment)"
    if origin == "toml":
        return f"{TABLE} {setting.key} in {pyproject}"
    return "default"


def _label(setting: Setting, origin: Origin) -> str:
    return {
        "cli": "cli",
        "env": f"env {setting.env}",
        "toml": PYPROJECT,
        "default": "default",
    }[origin]


def _pick(
    setting: Setting, cli: Mapping[str, object], env: Mapping[str, str], table: Mapping[str, object]
) -> tuple[object, Origin]:
    value = cli.get(setting.name)
    if value is not None:
        return value, "cli"
    env_value = env.get(setting.env)
    if env_value is not None and env_value.strip() != "":
        return env_value, "env"
    if setting.key in table:
        return table[setting.key], "toml"
    return setting.default, "default"


def _load_table(pyproject: Path, problems: list[str]) -> Mapping[str, object]:
    try:
        data = _read_pyproject(pyproject)
    except ValueError as exc:
        problems.append(f"{pyproject} is not valid TOML: {exc}")
        return {}
    except OSError as exc:
        problems.append(f"cannot read {pyproject}: {exc}")
        return {}
    if data is None:
        return {}
    tool = data.get("tool", {})
    table = tool.get("harness", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        problems.append(f"{TABLE} in {pyproject} must be a table, not {type(table).__name__}")
        return {}
    valid = [s.key for s in SETTINGS]
    for key in table:
        if key in BY_KEY:
            continue
        close = closest(key, valid)
        if not close:
            close = closest(key.replace("_", "-").lower(), valid)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"unknown key {key!r} in {TABLE} in {pyproject}{suggestion} Valid keys: {', '.join(valid)}")
    return table


def resolve(cli: Mapping[str, object], env: Mapping[str, str], root: Path) -> Settings:
    """Resolve every setting once: CLI > environment > [tool.harness] > default.

    ``cli`` maps attribute names (argparse dests) to values, ``None`` meaning
    "not given"; other entries (e.g. unrelated pytest options) are ignored.
    Raises one :class:`ConfigError` listing every problem found.
    """
    root = Path(root).resolve()
    pyproject = root / PYPROJECT
    problems: list[str] = []
    table = _load_table(pyproject, problems)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    for setting in SETTINGS:
        raw, origin = _pick(setting, cli, env, table)
        origins[setting.name] = origin
        sources[setting.name] = _label(setting, origin)
        if raw is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.convert(raw, Context(origin, root, setting.key))
        except Invalid as exc:
            expected = exc.expected or setting.expected_text()
            problems.append(
                f"{setting.key}: {_where(setting, origin, pyproject)} is {raw!r}: {exc.reason}. Expected {expected}."
            )
            values[setting.name] = None

    _check_together(values, origins, pyproject, problems)

    if problems:
        if len(problems) == 1:
            message = f"invalid harness setting: {problems[0]}"
        else:
            listed = "\n".join(f"  - {p}" for p in problems)
            message = f"invalid harness settings ({len(problems)} problems):\n{listed}"
        raise ConfigError(
            message,
            hint="fix the values above; every setting is listed under 'branchstack' in `pytest --help`.",
        )
    return Settings(root=root, sources=types.MappingProxyType(sources), notices=_env_typos(env), **values)


#: Variables the harness itself sets for the deploy command and the tests (not settings).
EXPORTED_ENV = (
    "HARNESS_BRANCH",
    "HARNESS_RUN_ID",
    "HARNESS_STAGE",
    "HARNESS_STACK_NAME",
    "HARNESS_STACK_ID",
    "HARNESS_STACKS",
    "HARNESS_STACK_TAGS",
    "HARNESS_STACK_TAGS_JSON",
)


def _env_typos(env: Mapping[str, str]) -> tuple[str, ...]:
    """Warnings for ``HARNESS_*`` variables that look like a misspelt setting (others are left alone)."""
    known = [st.env for st in SETTINGS]
    out = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith("HARNESS_") or name in known or upper in EXPORTED_ENV:
            continue
        close = closest(upper, known, cutoff=0.85)
        if close:
            out.append(f"{name} is not a harness setting and is ignored; did you mean {close[0]}?")
    return tuple(out)


def _check_together(
    values: Mapping[str, Any], origins: Mapping[str, Origin], pyproject: Path, problems: list[str]
) -> None:
    """Rules that involve more than one setting (only checked on valid values)."""
    target = values.get("target")
    endpoint = values.get("endpoint_url")
    url_setting = BY_NAME["endpoint_url"]
    target_setting = BY_NAME["target"]
    target_where = _where(target_setting, origins["target"], pyproject)
    if target == "endpoint" and endpoint is None and origins["endpoint_url"] == "default":
        problems.append(
            f"endpoint-url: required when target is 'endpoint' (target from {target_where}). "
            f"Set {url_setting.flag}, {url_setting.env} or {TABLE} {url_setting.key}."
        )
    if target == "local" and endpoint is not None:
        problems.append(
            f"endpoint-url: {_where(url_setting, origins['endpoint_url'], pyproject)} is {redact(str(endpoint))!r}, "
            f"but target is 'local' (from {target_where}), which starts its own emulator. "
            "Use target 'endpoint' to test against this URL, or remove the endpoint URL."
        )
