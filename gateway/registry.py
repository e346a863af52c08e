"""The stores and cameras registry: records, file import (CSV or JSON) and its CLI command.

`storesense gateway import-stores FILE --db PATH` upserts every record of FILE; a bad record
stops the import with the line and field named, before anything is written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.db import DB_HELP
from gateway.db import target as db_target
from gateway.homography import matrix_problem
from storesense.config import describe_validation_error
from storesense.errors import ConfigError
from storesense.schema import Ident

CSV_FIELDS = ("store_id", "name", "name_zh", "region", "franchisee", "timezone",
              "open_hour", "close_hour")


class CameraRecord(BaseModel):
    """A camera of a store and where it sits on the floor plan."""

    model_config = ConfigDict(extra="forbid")

    camera_id: Ident
    role: Literal["entrance", "floor"] = Field(
        "floor", description="entrance cameras count visitors on their lines")
    name: str = Field("", max_length=128)
    floorplan_points: list[tuple[float, float]] | None = Field(
        None, max_length=64, description="camera footprint on the floor plan, normalised")
    homography: list[list[float]] | None = Field(
        None, description="3x3 image->floor-plan homography, row-major")

    @field_validator("homography")
    @classmethod
    def _three_by_three(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is not None and (len(v) != 3 or any(len(r) != 3 for r in v)):
            raise ValueError("homography must be a 3x3 matrix")
        # a NaN or singular matrix would be stored and then break every heatmap query
        problem = None if v is None else matrix_problem(v)
        if problem:
            raise ValueError(f"homography {problem}")
        return v

    @field_validator("floorplan_points")
    @classmethod
    def _finite(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is not None and not all(math.isfinite(c) for p in v for c in p):
            raise ValueError("floorplan_points must be finite numbers")
        return v


class StoreRecord(BaseModel):
    """One store; the API's PUT body and one line of an import file."""

    model_config = ConfigDict(extra="forbid")

    store_id: Ident
    name: str = Field(min_length=1, max_length=128)
    name_zh: str = Field("", max_length=128)
    region: str = Field("", max_length=128)
    franchisee: str = Field("", max_length=128)
    timezone: str = Field(description="IANA zone, e.g. Europe/London")
    open_hour: int = Field(9, ge=0, le=24)
    close_hour: int = Field(21, ge=0, le=24)
    cameras: list[CameraRecord] | None = Field(
        None, description="when given, replaces the store's camera list")

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, v: list[CameraRecord] | None) -> list[CameraRecord] | None:
        # one camera_id twice would silently keep whichever row the upsert wrote last
        seen: set[str] = set()
        for cam in v or []:
            if cam.camera_id in seen:
                raise ValueError(f"camera_id {cam.camera_id!r} appears more than once")
            seen.add(cam.camera_id)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name)") from e
        return v


def _validated(rows: list[Any], where: str) -> list[StoreRecord]:
    out = []
    for i, row in enumerate(rows, start=1):
        try:
            out.append(StoreRecord.model_validate(row))
        except ValidationError as e:
            raise ConfigError(f"{where} record {i}: {describe_validation_error(e)}") from e
    return out


def parse_csv(text: str, where: str = "CSV") -> list[StoreRecord]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        missing = {"store_id", "name", "timezone"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{where}: header lacks {sorted(missing)}; expected {CSV_FIELDS}")
        rows = [{k: v for k, v in r.items() if k and v not in (None, "")} for r in reader]
    except csv.Error as e:  # e.g. a field over csv.field_size_limit() (128 kB)
        raise ConfigError(f"{where} line {reader.line_num + 1}: {e}") from e
    return _validated(rows, where)


def parse_json(text: str, where: str = "JSON") -> list[StoreRecord]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON: {e}") from e
    except RecursionError as e:  # thousands of nested brackets
        raise ConfigError(f"{where}: JSON nested too deeply") from e
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a JSON list of store records")
    return _validated(data, where)


def parse_file(name: str, content: bytes) -> list[StoreRecord]:
    """CSV or JSON by content (a JSON list starts with '['), whatever the file is called."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{name}: not UTF-8 text") from e
    if text.lstrip().startswith("["):
        return parse_json(text, name)
    return parse_csv(text, name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV (header: " + ",".join(CSV_FIELDS)
                        + ") or JSON list of store records")
    parser.add_argument("--db", type=db_target, required=True, help=DB_HELP)


def run(args: argparse.Namespace) -> int:
    from gateway.storage import Storage

    path: Path = args.file
    try:
        content = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    records = parse_file(str(path), content)
    storage = Storage(args.db)
    try:
        n = storage.upsert_stores(records)
    finally:
        storage.close()
    print(json.dumps({"imported": n}))
    return 0
