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
