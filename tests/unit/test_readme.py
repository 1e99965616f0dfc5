"""The README's settings table is generated from the settings table itself."""

from pathlib import Path

from harness.settings.render import settings_markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == settings_markdown_table().strip(), (
        "README settings table is stale; regenerate it from harness.settings.render.settings_markdown_table()"
    )


def test_readme_shows_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "make integration" in text and "make test" in text


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker}:start -->") + len(f"<!-- {marker}:start -->")
    return text[start : text.index(f"<!-- {marker}:end -->")].strip()


def test_readme_variables_table_is_current() -> None:
    from harness.command_env import variables_markdown_table

    assert _between(README.read_text(), "variables-table") == variables_markdown_table().strip(), (
        "README table of variables is stale; regenerate it from harness.command_env.variables_markdown_table()"
    )


def test_readme_vscode_settings_are_current() -> None:
    from harness.scenarios.json_schema import vscode_settings

    block = _between(README.read_text(), "vscode-settings")
    assert block == f"```json\n{vscode_settings()}\n```", (
        "README's VS Code settings are stale; regenerate them from harness.scenarios.json_schema.vscode_settings()"
    )
