"""The guides a person follows by hand (deploying, the CLI) name only commands and variables that exist:
every `shopsync <command>` in their code is a command of the CLI, every variable one that some settings
class reads."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from worker.cli import _parser
from worker.config import Settings
from worker.connectors.shopify.settings import ShopifySettings
from worker.connectors.shoprenter.settings import ShopRenterSettings
from worker.connectors.woocommerce.settings import WooSettings

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ["docs/deploy.md", "docs/cli.md"]
VARIABLE = re.compile(r"\b(SHOPSYNC_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|SUPABASE_[A-Z_]*[A-Z]|PORT)\b(?!_?\*)")


def commands() -> set[str]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def variables() -> set[str]:
    names: set[str] = set()
    classes: list[type[BaseSettings]] = [Settings, ShopifySettings, WooSettings, ShopRenterSettings]
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            names.add(f"{prefix}{name}".upper())
            if isinstance(field.validation_alias, AliasChoices):
                names |= {str(c) for c in field.validation_alias.choices}
    return names


def code_of(text: str) -> str:
    """The guide's code: fenced blocks and inline code spans."""
    blocks = [re.sub(r"#.*", "", b) for b in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)]   # not comments
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(blocks + spans)


@pytest.mark.parametrize("guide", GUIDES)
def test_guides_name_real_commands_and_variables(guide: str) -> None:
    text = (ROOT / guide).read_text()
    named = set(re.findall(r"\bshopsync ([a-z][a-z-]*)", code_of(text)))
    assert named, guide
    assert not named - commands(), f"{guide} names commands the CLI lacks: {sorted(named - commands())}"
    mentioned = set(VARIABLE.findall(text))
    assert mentioned, guide
    assert not mentioned - variables(), f"{guide} names unknown variables: {sorted(mentioned - variables())}"


def test_the_readme_links_the_guides() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/deploy.md)" in readme and "(docs/cli.md)" in readme
