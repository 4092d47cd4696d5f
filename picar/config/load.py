"""Reading the TOML file into a validated Config, and pydantic's errors into a technician's problem lines.

Each line starts with the key path as the file spells it (`mqtt.port`, `cameras[1].source`), shows the value
as written and says what is allowed; unknown keys get a did-you-mean. Every problem is reported at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from picar.config.errors import Allowed, ConfigError, Invalid, show
from picar.config.models import CONFIG, Config

T = TypeVar("T")


_ADAPTERS: dict[type, TypeAdapter[Any]] = {Config: CONFIG}


def _adapter(root: type[T]) -> TypeAdapter[T]:
    if root not in _ADAPTERS:
        _ADAPTERS[root] = TypeAdapter(root)
    return _ADAPTERS[root]


def parse_config(data: Mapping[str, Any], base_dir: Path, source_path: Path | None = None) -> Config:
    """Validate parsed TOML into a Config; relative paths are taken from `base_dir`.

    Raises ConfigError listing every problem found, not only the first.
    """
    return parse_toml(data, base_dir, Config, source_path)


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at `path`; raises ConfigError naming file, line and key."""
    return load_toml(path, Config)


def parse_toml(data: Mapping[str, Any], base_dir: Path, root: type[T], source_path: Path | None = None) -> T:
    """`parse_config` for any schema of frozen pydantic dataclasses built like Config (`root`: HQ's too)."""
    context = {"base_dir": Path(os.path.normpath(Path(base_dir).expanduser().absolute())),
               "source_path": source_path}
    try:
        return _adapter(root).validate_python(dict(data), context=context)
    except ValidationError as exc:
        raise ConfigError([line for error in exc.errors() for line in _problem(error, root)]) from None


def load_toml(path: Path, root: type[T]) -> T:
    """`load_config` for any schema of frozen pydantic dataclasses built like Config (`root`)."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, expected a TOML file"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied reading config file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not valid UTF-8 text at byte {exc.start}"]) from None
    except tomllib.TOMLDecodeError as exc:
        # The message already ends with "(at line L, column C)".
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    try:
        return parse_toml(data, path.absolute().parent, root, source_path=path.absolute())
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None


# --- pydantic's errors as problem lines -----------------------------------------------------------


def _key_path(loc: tuple[int | str, ...]) -> str:
    """("cameras", 1, "source") -> "cameras[1].source"."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def _owner(loc: tuple[int | str, ...], root: type) -> type:
    """The table (dataclass) that holds the last key of `loc`."""
    owner: Any = root
    for part in loc[:-1]:  # an index steps into tuple[CameraConfig, ...]
        owner = get_args(owner)[0] if isinstance(part, int) else owner.__pydantic_fields__[part].annotation
    return owner


def _field(owner: type, key: int | str) -> FieldInfo | None:
    fields: dict[str, FieldInfo] = getattr(owner, "__pydantic_fields__", {})
    return fields.get(key) if isinstance(key, str) else None


def _allowed_words(field: FieldInfo | None) -> str | None:
    return next((m.text for m in field.metadata if isinstance(m, Allowed)), None) if field else None


def _inner(annotation: Any) -> Any:
    """`X | None` -> X: TOML has no null, so None is only ever the default."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return annotation


def _num(x: Any) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range(field: FieldInfo) -> str:
    """"an integer from 1 to 65535", "a number > 0 and <= 3600": the type and bounds of a numeric key."""
    noun = "an integer" if _inner(field.annotation) is int else "a number"
    lo = next((m for m in field.metadata if isinstance(m, annotated_types.Ge | annotated_types.Gt)), None)
    hi = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    if isinstance(lo, annotated_types.Ge) and hi is not None:
        return f"{noun} from {_num(lo.ge)} to {_num(hi)}"
    parts = []
    if isinstance(lo, annotated_types.Ge):
        parts.append(f">= {_num(lo.ge)}")
    elif isinstance(lo, annotated_types.Gt):
        parts.append(f"> {_num(lo.gt)}")
    if hi is not None:
        parts.append(f"<= {_num(hi)}")
    return f"{noun} {' and '.join(parts)}" if parts else noun


def _unknown_key(where: str, key: str, owner: type) -> str:
    allowed = [f.name for f in dataclasses.fields(owner) if f.init]
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}{key}: unknown key{hint}; allowed keys: {', '.join(allowed)}"


def _problem(error: ErrorDetails, root: type) -> list[str]:
    """One pydantic error as problem lines (usually one)."""
    loc, kind, value = tuple(error["loc"]), error["type"], error["input"]
    path, key = _key_path(loc), loc[-1] if loc else ""
    where = _key_path(loc[:-1]) + "." if len(loc) > 1 else ""
    owner = _owner(loc, root) if loc else root
    field = _field(owner, key)
    words = _allowed_words(field)
    cause = (error.get("ctx") or {}).get("error")

    def bad(text: str) -> list[str]:
        return [f"{path} = {show(value)}: {text}"]

    if isinstance(cause, Invalid):
        return cause.lines(where) if cause.lines else bad(cause.text)
    if kind == "unexpected_keyword_argument":
        return [_unknown_key(where, str(key), owner)]
    if kind == "missing":
        what = "table" if field is not None and dataclasses.is_dataclass(field.annotation) else "key"
        return [f"{path}: required {what} is missing; allowed: {words or 'a value'}"]
    if kind in ("dataclass_type", "dataclass_exact_type"):
        return [f"{path}: expected a table ({'[[cameras]]' if isinstance(key, int) else f'[{path}]'}), "
                f"got {show(value)}"]
    if kind == "tuple_type" and isinstance(value, dict):
        return [f"{path}: expected an array of tables; write each camera as [[cameras]], not [cameras]"]
    if kind == "bool_type":
        return bad("allowed: true or false")
    if kind == "literal_error" and field is not None:
        return bad(f"allowed: {', '.join(show(c) for c in get_args(_inner(field.annotation)))}")
    if kind in ("int_type", "float_type") and field is not None:
        return bad(f"allowed: {_range(field)}")
    if kind == "finite_number" and field is not None:
        return bad(f"allowed: a finite {_range(field).removeprefix('a ')}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal") and field is not None:
        return bad(f"out of range; allowed: {_range(field)}")
    if kind == "string_type":
        return bad(f"allowed: a string{' like ' + words if words else ''}")
    if kind == "string_too_short":
        return bad("must not be empty")
    if kind == "string_pattern_mismatch":
        return bad(f"allowed: {words or error['msg']}")
    if kind == "tuple_type" and words:
        return bad(f"allowed: {words}")
    return bad(f"allowed: {error['msg']}")  # a kind not met before: pydantic's own words
