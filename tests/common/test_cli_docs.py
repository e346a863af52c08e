"""Every storesense command is in the README's command table (a new one cannot go unlisted)."""

from __future__ import annotations

import re

from storesense.cli import COMMANDS
from tests.conftest import REPO


def test_every_command_is_documented_in_the_readme():
    table = REPO.joinpath("README.md").read_text(encoding="utf-8").split("## Commands", 1)[1]
    listed = {m.group(1).replace("\\|", "|") for m in re.finditer(r"`storesense ([^`]+)`", table)}
    missing = []
    for path in COMMANDS:
        head, *sub = path
        # "bench edge|gateway|query" documents three subcommands at once
        ok = any(
            text.split()[0] == head
            and (not sub or sub[0] in text.split()[1].split("|"))
            for text in listed
            if len(text.split()) >= (2 if sub else 1)
        )
        if not ok:
            missing.append(" ".join(path))
    assert missing == []
