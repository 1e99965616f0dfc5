"""The settings as text: the README's Markdown table and the listing of ``harness settings``."""

from __future__ import annotations

from tabulate import tabulate

from harness.settings.table import SETTINGS, Settings


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown_table() -> str:
    """The settings table in GitHub Markdown, for the README."""
    rows = []
    for s in SETTINGS:
        flag = s.flag if s.switch else f"{s.flag} {s.shown_metavar()}"
        rows.append(
            [
                f"`{s.name}`",
                f"`{_md(flag)}`",
                f"`{s.key}`",
                f"`{s.env}`",
                _md(s.describe_default()),
                _md(s.help),
            ]
        )
    return tabulate(
        rows,
        headers=["setting", "flag", "pyproject key", "env var", "default", "description"],
        tablefmt="github",
    )


def settings_listing(settings: Settings) -> list[str]:
    """``harness settings``: every setting, its value and where it came from."""
    return [f"{key:<20} {value}  ({source})" for key, value, source in settings.describe()]
