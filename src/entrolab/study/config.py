"""Study configs: a TOML file, dispatched on its ``kind`` and validated before any work starts.

    kind = "robustness"     # optional: the default; "comparison", or any registered kind
    name = "lorenz-quick"
    ...                     # the rest is the kind's (see entrolab.studies.KIND.config)

Every kind's model derives from `StudyConfigBase` (strict pydantic: unknown
keys, wrong types and out-of-range values are errors). Every mistake is a
`StudyConfigError` naming the key and the problem, raised before anything is
trained. The resolved config (defaults filled in) is written to the study
directory as ``config.json``; `read_config` reads it back with the same
model, so every unit and every table works from the same validated config.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from entrolab.study.kinds import DEFAULT_KIND, UnknownKindError, get_kind

CONFIG_FILE = "config.json"
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]


class StudyConfigError(ValueError):
    """A study config that cannot run: the message names the key and the problem."""


class Strict(BaseModel):
    """Unknown keys, type coercions and mutation are errors (every config section uses this)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def ints_to_floats(v: Any) -> Any:
    """For a `mode="before"` validator: TOML writes 1 for 1.0; accept ints (not bools) in float fields."""
    if isinstance(v, list):
        return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class StudyConfigBase(Strict):
    """What every study config has: its kind, a name, and the seed of its evaluation keys."""

    kind: str = DEFAULT_KIND
    name: Name

    def identity(self) -> dict[str, Any]:
        """The keys that say which study a directory holds: a rerun into the same directory
        must match them (other keys may change: the engine then redoes what they affect)."""
        return {"kind": self.kind, "name": self.name}


def format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and
                                          not isinstance(e.get("input"), dict) else ""))
    return "\n".join(lines)


def parse_config(data: dict, source: str = "config") -> StudyConfigBase:
    """The validated config of the kind named by ``data["kind"]`` (default: robustness)."""
    kind_name = data.get("kind", DEFAULT_KIND)
    try:
        kind = get_kind(kind_name) if isinstance(kind_name, str) else get_kind(repr(kind_name))
    except UnknownKindError as err:
        raise StudyConfigError(f"{source}: invalid study config:\n  kind: {err}") from None
    try:
        return kind.config_model.model_validate({**data, "kind": kind.name})
    except ValidationError as err:
        raise StudyConfigError(f"{source}: invalid study config:\n{format_error(err)}") from None


def load_config(path: str | Path) -> StudyConfigBase:
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(f"{path}: no such study config")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise StudyConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, str(path))


def config_json(config: StudyConfigBase) -> str:
    """The resolved config as written to ``config.json`` (sorted keys, defaults filled in)."""
    return json.dumps(json.loads(config.model_dump_json()), indent=2, sort_keys=True)


def read_config(study_dir: str | Path) -> StudyConfigBase:
    """The resolved config of a study directory (a config.json without ``kind`` is a
    robustness study: directories written before study kinds existed)."""
    data = json.loads((Path(study_dir) / CONFIG_FILE).read_text())
    kind = get_kind(data.get("kind", DEFAULT_KIND))
    return kind.config_model.model_validate_json(json.dumps({**data, "kind": kind.name}))
