"""``flexmeter config``: every setting, its environment variable, its value here and what it is for.

Integrators configure a deployment by environment (containers, systemd units); this shows what a component
will use before it starts. Secrets are shown as set / not set, never their value.
"""

from __future__ import annotations

import json
import re
from typing import Any

import typer
from pydantic import SecretStr

from flexmeter.config import Settings, load_settings

ENV_PREFIX = "FLEXMETER_"
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)


def masked(value: Any) -> str | None:
    """The text of a setting with any password (URL user info, DSN ``password=``) replaced by ``***``."""
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return "***"
    text = _URL_PASSWORD.sub(r"\1***@", str(value))
    return _DSN_PASSWORD.sub(r"\1***", text)


def describe() -> list[dict[str, Any]]:
    """One row per setting: name, env, value (secrets masked), default, description."""
    settings = load_settings()
    rows = []
    for name, field in Settings.model_fields.items():
        rows.append({"name": name, "env": ENV_PREFIX + name.upper(),
                     "value": masked(getattr(settings, name)),
                     "default": masked(field.get_default(call_default_factory=True)),
                     "description": field.description or ""})
    return rows


def markdown_table() -> str:
    """The table of docs/configuration.md: every setting with its default (a test keeps the two equal)."""
    lines = ["| variable | default | what it is for |", "|---|---|---|"]
    for row in describe():
        if row["name"] == "corpus_dir":
            default = "`../shared/corpus` next to the repository"
        else:
            default = f"`{row['default'] if row['default'] is not None else '(unset)'}`"
        lines.append(f"| `{row['env']}` | {default} | {row['description']} |")
    return "\n".join(lines)


def config_command(as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
                   markdown: bool = typer.Option(False, "--markdown", help="Print the defaults as the Markdown "
                                                 "table of docs/configuration.md.")) -> None:
    """Every FLEXMETER_* setting with its value here (from the environment, else the default)."""
    if markdown:
        print(markdown_table())
        return
    rows = describe()
    if as_json:
        print(json.dumps({"settings": rows}))
        return
    width = max(len(row["env"]) for row in rows)
    for row in rows:
        marker = "" if row["value"] == row["default"] else "   (from the environment)"
        print(f"{row['env']:<{width}}  {row['value'] if row['value'] is not None else '-'}{marker}")
        print(f"{'':<{width}}  {row['description']}")


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("config")(config_command)
