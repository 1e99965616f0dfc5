"""Reading scenario YAML: line numbers on every container, matcher tags, strictness.

Mappings load as :class:`LocatedDict` and sequences as :class:`LocatedList`,
which remember the line of every key and item so validation errors can point
at the line. The matcher tags (``!re``, ``!ge``, ``!exact``...) construct
:mod:`matchers` objects and check their argument at load time. YAML features
that would smuggle non-JSON values in (dates, sets, binary, python tags) are
refused or kept as text.

The file is parsed by libyaml's C parser when PyYAML has it (several times
faster); the constructors, the tags and the checks are the same Python code
either way. Any YAML syntax error re-reads the file with the pure-Python
parser, so what a user sees (message, line, hint) is one parser's wording
whichever is installed.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
import yaml.composer
import yaml.parser
import yaml.reader
import yaml.scanner
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from harness.errors import ScenarioError
from harness.scenarios import matchers as m
from harness.scenarios.templating import placeholder_pattern, single_expression, suggest

TAGS = ("!re", "!gt", "!ge", "!lt", "!le", "!between", "!absent", "!any", "!len", "!contains", "!exact")


class LocatedDict(dict[Any, Any]):
    """A dict that knows its own line and the line of each key's value."""

    line: int = 0
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return getattr(self, "value_lines", {}).get(key, self.line)

    def key_line(self, key: Any) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LocatedList(list[Any]):
    """A list that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


def line_of(container: Any, key: Any, default: int) -> int:
    """The line of ``container[key]`` if the container is located, else ``default``."""
    if isinstance(container, LocatedDict | LocatedList):
        return container.line_of(key)
    return default


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class ScenarioConstructor(SafeConstructor):
    """SafeConstructor with located containers, duplicate-key errors and matcher tags (either parser)."""

    path: str = "<string>"

    def error(self, node: Node, message: str, hint: str | None = None) -> ScenarioError:
        return ScenarioError(message, path=self.path, line=_line(node), hint=hint)

    # -- containers ---------------------------------------------------------

    def build_mapping(self, node: Node) -> LocatedDict:
        if not isinstance(node, MappingNode):
            raise self.error(node, "expected a mapping here")
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise self.error(
                    key_node,
                    f"duplicate key {key!r} (first used on line {seen[key]})",
                    hint="each key may appear once per mapping; remove or rename one",
                )
            seen[key] = _line(key_node)
        # Merge keys (<<: *anchor) are resolved first; explicit keys then override them.
        self.flatten_mapping(node)
        data = LocatedDict()
        data.line = _line(node)
        data.key_lines, data.value_lines = {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, bool):
                raise self.error(
                    key_node,
                    f"key {key_node.value!r} reads as the boolean {key} in YAML",
                    hint=f'quote it: "{key_node.value}":',
                )
            if not isinstance(key, str | int | float) or key is None:
                raise self.error(key_node, f"keys must be plain strings, not {key!r}", hint="quote the key")
            data[key] = self.construct_object(value_node, deep=True)
            data.key_lines[key] = _line(key_node)
            data.value_lines[key] = _line(value_node)
        return data

    def build_sequence(self, node: Node) -> LocatedList:
        if not isinstance(node, SequenceNode):
            raise self.error(node, "expected a list here")
        data = LocatedList(self.construct_object(child, deep=True) for child in node.value)
        data.line = _line(node)
        data.item_lines = [_line(child) for child in node.value]
        return data

    def build_plain(self, node: Node) -> Any:
        """The value of ``node`` as if it had no tag (for a tag's argument)."""
        if isinstance(node, MappingNode):
            return self.build_mapping(node)
        if isinstance(node, SequenceNode):
            return self.build_sequence(node)
        assert isinstance(node, ScalarNode)
        if node.style:  # quoted or block: always a string (plain is None, or "" from libyaml)
            return node.value
        tag = self.resolve(ScalarNode, node.value, (True, False))
        return self.construct_object(ScalarNode(tag, node.value, node.start_mark, node.end_mark), deep=True)

    # -- matcher tags -------------------------------------------------------

    def scalar_arg(self, node: Node, tag: str, hint: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(
                node,
                f"{tag} takes a single value, not a {'mapping' if isinstance(node, MappingNode) else 'list'}",
                hint=hint,
            )
        return self.build_plain(node)

    def number_arg(self, value: Any, node: Node, tag: str, hint: str) -> Any:
        if isinstance(value, str) and single_expression(value) is not None:
            return value  # checked by the template validator, converted when rendered
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                pass
        if not m.is_number(value):
            raise self.error(node, f"{tag} needs a number, got {value!r}", hint=hint)
        return value


def _regex(loader: ScenarioConstructor, node: Node) -> m.Matcher:
    hint = 'write it like !re "^[0-9a-f]{32}$" (quote patterns with special characters)'
    pattern = loader.scalar_arg(node, "!re", hint)
    if not isinstance(pattern, str) or not pattern:
        raise loader.error(node, f"!re needs a non-empty pattern string, got {pattern!r}", hint=hint)
    try:
        re.compile(placeholder_pattern(pattern))
    except re.error as exc:
        raise loader.error(
            node,
            f"!re pattern {pattern!r} is not a valid regular expression: {exc}",
            hint="check brackets and escapes; to match text literally, escape . ( ) [ ] with \\",
        ) from None
    return m.Regex(pattern, line=_line(node))


def _compare(tag: str) -> Any:
    def construct(loader: ScenarioConstructor, node: Node) -> m.Matcher:
        hint = f"write it like `{tag} 1` or `{tag} 2.5`"
        value = loader.number_arg(loader.scalar_arg(node, tag, hint), node, tag, hint)
        return m.Compare(tag, value, line=_line(node))

    return construct


def _between(loader: ScenarioConstructor, node: Node) -> m.Matcher:
    hint = "write it like `!between [1, 10]` (inclusive)"
    if not isinstance(node, SequenceNode) or len(node.value) != 2:
        raise loader.error(node, "!between takes a list of two numbers [low, high]", hint=hint)
    low, high = (loader.number_arg(loader.build_plain(n), n, "!between", hint) for n in node.value)
    if m.is_number(low) and m.is_number(high) and low > high:
        raise loader.error(node, f"!between [{low}, {high}]: low is greater than high", hint=hint)
    return m.Between(low, high, line=_line(node))


def _no_arg(cls: type[m.Matcher]) -> Any:
    def construct(loader: ScenarioConstructor, node: Node) -> m.Matcher:
        if not isinstance(node, ScalarNode) or node.value != "":
            raise loader.error(
                node, f"{cls.tag} takes no argument", hint=f"write `key: {cls.tag}` with nothing after the tag"
            )
        return cls(line=_line(node))  # type: ignore[call-arg]

    return construct


def _length(loader: ScenarioConstructor, node: Node) -> m.Matcher:
    hint = "write it like `!len 3`"
    value = loader.number_arg(loader.scalar_arg(node, "!len", hint), node, "!len", hint)
    if not isinstance(value, str) and (not isinstance(value, int) or value < 0):
        raise loader.error(node, f"!len needs a whole number >= 0, got {value!r}", hint=hint)
    return m.Length(value, line=_line(node))


def _contains(loader: ScenarioConstructor, node: Node) -> m.Matcher:
    if isinstance(node, ScalarNode) and node.value == "" and not node.style:
        raise loader.error(
            node,
            "!contains needs the element to look for",
            hint="write it like `items: !contains {sku: ABC-1}` or `text: !contains ok`",
        )
    return m.Contains(loader.build_plain(node), line=_line(node))


def _exact(loader: ScenarioConstructor, node: Node) -> m.Matcher:
    return m.Exact(loader.build_plain(node), line=_line(node))


def _unknown_tag(loader: ScenarioConstructor, suffix: str, node: Node) -> Any:
    tag = node.tag
    if tag.startswith("tag:yaml.org,2002:"):
        raise loader.error(
            node,
            f"tag !!{tag.removeprefix('tag:yaml.org,2002:')} is not allowed",
            hint="scenario files hold plain data; matcher tags are: " + ", ".join(TAGS),
        )
    raise loader.error(node, f"unknown tag {tag!r}", hint=suggest(tag, TAGS, "tags"))


def _refused(what: str) -> Any:
    def construct(loader: ScenarioConstructor, node: Node) -> Any:
        raise loader.error(
            node,
            f"{what} are not supported in scenario files",
            hint="use plain strings, numbers, booleans, null, lists and mappings",
        )

    return construct


def _plain_text(loader: ScenarioConstructor, node: Node) -> Any:
    # Dates stay text: payloads must be JSON, and 2024-01-01 means the string.
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ScenarioConstructor.add_constructor("tag:yaml.org,2002:map", ScenarioConstructor.build_mapping)
ScenarioConstructor.add_constructor("tag:yaml.org,2002:seq", ScenarioConstructor.build_sequence)
ScenarioConstructor.add_constructor("tag:yaml.org,2002:timestamp", _plain_text)
ScenarioConstructor.add_constructor("tag:yaml.org,2002:binary", _refused("binary values (!!binary)"))
ScenarioConstructor.add_constructor("tag:yaml.org,2002:set", _refused("sets (!!set)"))
ScenarioConstructor.add_constructor("tag:yaml.org,2002:omap", _refused("ordered maps (!!omap)"))
ScenarioConstructor.add_constructor("tag:yaml.org,2002:pairs", _refused("pairs (!!pairs)"))
ScenarioConstructor.add_constructor("!re", _regex)
for _tag in ("!gt", "!ge", "!lt", "!le"):
    ScenarioConstructor.add_constructor(_tag, _compare(_tag))
ScenarioConstructor.add_constructor("!between", _between)
ScenarioConstructor.add_constructor("!absent", _no_arg(m.Absent))
ScenarioConstructor.add_constructor("!any", _no_arg(m.AnyValue))
ScenarioConstructor.add_constructor("!len", _length)
ScenarioConstructor.add_constructor("!contains", _contains)
ScenarioConstructor.add_constructor("!exact", _exact)
ScenarioConstructor.add_multi_constructor("", _unknown_tag)


class ScenarioLoader(  # the pure-Python parser: the reference, and the wording of every syntax error
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, ScenarioConstructor, Resolver
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        ScenarioConstructor.__init__(self)
        Resolver.__init__(self)


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure parser reads everything
    CParser = None  # type: ignore[assignment,misc]

if CParser is not None:

    class _FastLoader(CParser, ScenarioConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser with the same constructors."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            ScenarioConstructor.__init__(self)
            Resolver.__init__(self)


def _fast(text: str, path: str) -> tuple[bool, Any]:
    """(True, data) from libyaml, or (False, None) where the pure parser must read it (or say what is wrong)."""
    if CParser is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return False, None
    loader = _FastLoader(text)
    loader.path = path
    try:
        return True, loader.get_single_data()
    except (yaml.YAMLError, RecursionError):
        return False, None  # a ScenarioError from a constructor is the same from either parser: it propagates
    finally:
        loader.dispose()


def parse_yaml(text: str, path: str) -> Any:
    """Parse one YAML document into located data; every problem is a ``ScenarioError``."""
    parsed, data = _fast(text, path)
    if parsed:
        return data
    try:
        loader = ScenarioLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ScenarioError(
            f"invalid YAML: control character U+{exc.character:04X} is not allowed",
            path=path,
            line=line,
            hint="remove the control character (often pasted from a terminal or a binary file)",
        ) from None
    loader.path = path
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        hint = "check indentation and quoting around this line"
        if "expected a single document" in problem:
            hint = "a scenario file holds one YAML document; remove the extra '---'"
        elif "while scanning a tag" in problem:
            hint = "a tag needs a space after it: write `{item: !absent }` (or use block style) in flow mappings"
        elif "found character '\\t'" in problem:
            hint = "YAML does not allow tabs for indentation; use spaces"
        raise ScenarioError(f"invalid YAML: {problem}", path=path, line=line, hint=hint) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ScenarioError(
            "invalid YAML: a control character is not allowed", path=path, line=line, hint="remove it"
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", path=path, hint="check the file's syntax") from None
    except RecursionError:
        raise ScenarioError(
            "YAML nests too deeply (recursive alias?)", path=path, hint="do not make an anchor refer to itself"
        ) from None
    finally:
        loader.dispose()
