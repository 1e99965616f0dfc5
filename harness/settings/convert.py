"""Converters: each checks and normalises one raw setting value, or raises :class:`Invalid` saying why not.

A converter gets the raw value (a TOML value, or text from the command line
or the environment) and a :class:`Context` (where the value came from, the
project root, the key). Displays turn a resolved value back into text.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import string
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from harness.errors import Invalid, did_you_mean
from harness.urls import redact

PYPROJECT = "pyproject.toml"
TABLE = "[tool.harness]"

Origin = Literal["cli", "env", "toml", "default"]


@dataclass(frozen=True)
class Context:
    """What a converter may need besides the raw value."""

    origin: Origin
    root: Path
    key: str

    @property
    def textual(self) -> bool:
        """True when the value came from the command line or the environment."""
        return self.origin in ("cli", "env")


Converter = Callable[[object, Context], Any]
Display = Callable[[Any], str]

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")
BOOL_WORDS = ", ".join(w for pair in zip(_TRUE_WORDS, _FALSE_WORDS, strict=True) for w in pair)

_PATTERN_FIELDS = ("app", "stage")


def _text(raw: object, what: str = "a string") -> str:
    if not isinstance(raw, str):
        raise Invalid(f"expected {what}, got {type(raw).__name__}")
    return raw.strip()


def choice(options: type[StrEnum]) -> Converter:
    """One of an Enum's values (exact match); returns the member."""

    def convert(raw: object, ctx: Context) -> StrEnum:
        value = _text(raw)
        try:
            return options(value)
        except ValueError:
            pass
        suggestion = did_you_mean(value.lower(), [o.value for o in options])
        raise Invalid(f"not one of the choices{'; ' + suggestion if suggestion else ''}")

    convert.options = options  # type: ignore[attr-defined]  # the table derives choices and metavar from it
    return convert


def http_url(raw: object, ctx: Context) -> str:
    value = _text(raw)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise Invalid(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise Invalid("no host")
    if port == 0:
        raise Invalid("port 0 is not a usable port")
    return value


def matching(pattern: re.Pattern[str], what: str) -> Converter:
    """A string that fully matches ``pattern``."""

    def convert(raw: object, ctx: Context) -> str:
        value = _text(raw)
        if not pattern.fullmatch(value):
            raise Invalid(f"not {what}")
        return value

    return convert


region = matching(re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", re.ASCII), "an AWS region name")
app_name = matching(re.compile(r"[a-z][a-z0-9-]{0,29}", re.ASCII), "a valid app name")
role_arn = matching(re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII), "an IAM role ARN")


def stack_name_pattern(raw: object, ctx: Context) -> str:
    """A ``str.format`` pattern using only ``{app}`` and ``{stage}``, plain."""
    value = _text(raw)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise Invalid(f"not a valid format string ({exc})") from None
    fields: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name == "" or name.isdigit():
            raise Invalid(f"positional field {shown} is not allowed")
        if "." in name or "[" in name:
            raise Invalid(f"attribute or index access {shown} is not allowed")
        if name not in _PATTERN_FIELDS:
            raise Invalid(f"unknown field {shown}")
        if conversion:
            raise Invalid(f"conversion {shown} is not allowed")
        if spec:
            raise Invalid(f"format spec {shown} is not allowed")
        fields.append(name)
    if "stage" not in fields:
        raise Invalid("it must contain {stage}")
    return value


def argv(raw: object, ctx: Context) -> tuple[str, ...]:
    """An argv list: a TOML list of strings, or a shlex-split string from CLI/env."""
    if isinstance(raw, str):
        if not ctx.textual:
            try:
                example = json.dumps(shlex.split(raw))
            except ValueError:
                example = '["make", "deploy"]'
            raise Invalid(
                f"a string is not accepted in {PYPROJECT} (commands never go through a shell); "
                f"write a list: {ctx.key} = {example}"
            )
        try:
            words = shlex.split(raw)
        except ValueError as exc:
            raise Invalid(f"cannot be split into words ({exc})") from None
    elif isinstance(raw, list | tuple):
        if not all(isinstance(word, str) for word in raw):
            raise Invalid("every item of the list must be a string")
        words = list(raw)
    else:
        raise Invalid(f"expected a list of strings, got {type(raw).__name__}")
    if not words:
        raise Invalid("the command is empty")
    if not words[0].strip():
        raise Invalid("the program name is blank")
    return tuple(words)


def name_list(raw: object, ctx: Context) -> tuple[str, ...]:
    """A list of names: a TOML list of strings or a comma-separated string."""
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple):
        if not all(isinstance(item, str) for item in raw):
            raise Invalid("every item of the list must be a string")
        items = list(raw)
    else:
        raise Invalid(f"expected a list of strings, got {type(raw).__name__}")
    names = tuple(item.strip() for item in items if item.strip())
    bad = [name for name in names if any(ch.isspace() for ch in name)]
    if bad:
        raise Invalid(f"names cannot contain whitespace: {bad[0]!r}")
    return names


def boolean(raw: object, ctx: Context) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and ctx.textual:
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise Invalid("not a yes/no word", expected=f"one of {BOOL_WORDS} (any case)")
    raise Invalid(f"expected a TOML boolean, got {type(raw).__name__}", expected="true or false (unquoted)")


def non_empty_text(raw: object, ctx: Context) -> str:
    value = _text(raw)
    if not value:
        raise Invalid("it is empty")
    return value


def project_path(raw: object, ctx: Context) -> Path:
    """A path, relative to the project root unless absolute; returned absolute."""
    if isinstance(raw, Path):
        value = str(raw)
    else:
        value = _text(raw, "a path string")
    if not value:
        raise Invalid("it is empty")
    if "\0" in value:
        raise Invalid("it contains a NUL character")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (ctx.root / path)


def shard_spec(raw: object, ctx: Context) -> tuple[int, int]:
    """``i/n`` with 1 <= i <= n: this run is shard i of n."""
    if not isinstance(raw, str):
        raise Invalid("expected text like 1/2")
    m = re.fullmatch(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*", raw)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise Invalid("expected i/n with 1 <= i <= n, e.g. 1/2")
    return int(m[1]), int(m[2])


def account_list(raw: object, ctx: Context) -> tuple[str, ...]:
    """12-digit AWS account ids."""
    ids = name_list(raw, ctx)
    bad = [i for i in ids if not re.fullmatch(r"\d{12}", i)]
    if bad:
        raise Invalid(f"not a 12-digit account id: {bad[0]!r}")
    return ids


def seed_number(raw: object, ctx: Context) -> int:
    """A non-negative integer seed."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Invalid("expected a whole number")
    try:
        value = int(raw.strip()) if isinstance(raw, str) else raw
    except ValueError:
        raise Invalid("not a whole number") from None
    if not 0 <= value < 2**32:
        raise Invalid("must be between 0 and 4294967295")
    return value


def non_negative_number(raw: object, ctx: Context) -> int | float:
    if raw in (0, "0", 0.0) or (isinstance(raw, str) and raw.strip() in ("0", "0.0")):
        return 0
    return positive_number(raw, ctx)


def positive_number(raw: object, ctx: Context) -> int | float:
    number: int | float
    if isinstance(raw, bool):
        raise Invalid("expected a number, got a boolean")
    if isinstance(raw, int | float):
        number = raw
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise Invalid("not a number") from None
    else:
        raise Invalid(f"expected a number, got {type(raw).__name__}")
    if isinstance(number, float) and not math.isfinite(number):
        raise Invalid("not a finite number")
    if number <= 0:
        raise Invalid("it must be greater than 0")
    return number


def ratio_above_one(raw: object, ctx: Context) -> int | float:
    """A slowdown ratio: a number greater than 1 (2 = twice as slow)."""
    number = positive_number(raw, ctx)
    if number <= 1:
        raise Invalid("it must be greater than 1 (2 means twice as slow)")
    return number


# -- displays ------------------------------------------------------------------


def show(value: object) -> str:
    """Default display of a resolved value."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ", ".join(str(item) for item in value) if value else "(none)"
    return str(value)


def show_argv(value: object) -> str:
    if value is None:
        return "(not set)"
    assert isinstance(value, tuple | list)
    return shlex.join(value)


def show_url(value: object) -> str:
    return "(not set)" if value is None else redact(str(value))
