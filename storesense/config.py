"""Loading TOML configuration into pydantic models: the file is read, nothing else happens."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from storesense.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem: dotted field path, what is wrong, the value given."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        given = e.get("input")
        shown = repr(given)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{loc}: {e['msg']} (got {shown})")
    return "; ".join(lines)


def load_toml(path: str | Path, model: type[M]) -> M:
    """Parse ``path`` into ``model``; any problem is a ConfigError naming file and field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{p}: config file not found") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{p}: {describe_validation_error(e)}") from e


def read_text_file(path: Path, what: str) -> str:
    """An operator's import file as text (UTF-8, a spreadsheet's BOM dropped); ConfigError
    names ``what`` the file is and why it cannot be read."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ConfigError(f"{what} file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} file {path} is not UTF-8 text") from e
