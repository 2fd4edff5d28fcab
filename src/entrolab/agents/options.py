"""Algorithm options, declared once: in the configuration dataclasses themselves.

The dataclasses of each algorithm are the single source of truth for its
options: `PPOConfig`/`PPOHParams` (entrolab.agents.ppo.config) and
`SACConfig`/`SACHParams` (entrolab.agents.sac.config). Every field's name,
annotated type, default and help text (`metadata={"help": ...}`) live there,
and nowhere else. This module reads them, so that the command line
(`entrolab train --set KEY=VALUE --options FILE.toml`, `entrolab options ALGO`)
and the study configs accept the same options, with the same types, defaults,
checks and error messages, and a new field is an option everywhere at once.

- `options(algo)` lists the settable options (`Option`: name, static config or
  traced hparams, readable type, default, help); `describe(algo)` renders them
  as a plain-text table.
- `parse_assignments(["KEY=VALUE", ...])` and `load_options(path)` turn
  command-line assignments and TOML files into plain `{name: value}` mappings.
- `build(algo, values, total_timesteps=...)` applies such a mapping over the
  dataclass defaults, converting every value to its field's annotated type
  (JSON and TOML give lists for tuples and ints for floats), and runs the
  dataclasses' own validation. The result is exactly what constructing the
  dataclasses by hand gives.

Every problem is an `OptionError` (a `ValueError`) whose message has one line
per bad key or value, all of them collected before raising.

Not settable here: `total_timesteps` (always `build`'s argument), `adaent`
(chosen by the algorithm name: `sac` or `sac-adaent`) and the entropy
coefficient (`ent_coef` of PPO, `alpha` of SAC), which `train_sweep` sets per
agent from the sweep's list of alphas.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrolab.agents.ppo.config import PPOConfig, PPOHParams
from entrolab.agents.sac.config import SACConfig, SACHParams
from entrolab.agents.reinforce import ReinforceConfig, ReinforceHParams

__all__ = ["ALGOS", "Option", "OptionError", "build", "describe", "load_options", "options", "parse_assignments",
           "task_defaults"]

ALGOS = ("ppo", "sac", "sac-adaent", "reinforce")


class OptionError(ValueError):
    """Bad options: the message has one line per bad key or value (also in `errors`)."""

    def __init__(self, errors: str | Sequence[str]):
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Option:
    """One settable option of an algorithm, as declared by its dataclass field."""

    name: str
    target: str  # "config" (static: changing it recompiles) or "hparams" (traced: sweepable by vmap)
    type: str  # readable, e.g. "int", "tuple[int, ...] | None"
    default: Any
    help: str


# ---- the algorithms -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """How an algorithm name maps onto its dataclasses."""

    config: type
    hparams: type
    entropy_field: str  # the hparams field that the sweep's alphas set
    fixed: Mapping[str, Any]  # config fields that the algorithm name decides


_SPECS: dict[str, _Spec] = {
    "ppo": _Spec(PPOConfig, PPOHParams, "ent_coef", {}),
    "sac": _Spec(SACConfig, SACHParams, "alpha", {"adaent": False}),
    "sac-adaent": _Spec(SACConfig, SACHParams, "alpha", {"adaent": True}),
    # REINFORCE's entropy is set only through its fixed std: the sweep's "alphas" are stds
    "reinforce": _Spec(ReinforceConfig, ReinforceHParams, "std", {}),
}
assert set(_SPECS) == set(ALGOS)
assert all(  # one namespace of options per algorithm
    not {f.name for f in dataclasses.fields(s.config)} & {f.name for f in dataclasses.fields(s.hparams)}
    for s in _SPECS.values()
)

# keys with a hint of their own when they are unknown to an algorithm
_SAC_HINTS = dict.fromkeys(
    ("entropy_schedule", "ent_horizon"),
    "SAC has no entropy schedule: its alpha is fixed, or learned with auto_alpha = true",
)
_UNKNOWN_HINTS: dict[str, dict[str, str]] = {"sac": _SAC_HINTS, "sac-adaent": _SAC_HINTS}

def _spec(algo: str) -> _Spec:
    try:
        return _SPECS[algo]
    except KeyError:
        raise OptionError(f"unknown algorithm {algo!r}; available: {', '.join(ALGOS)}") from None


def _not_settable(algo: str) -> dict[str, str]:
    """Fields that `build` sets itself, with the reason (the message of the error if given)."""
    spec = _spec(algo)
    out = {
        "total_timesteps": "set from the number of env steps per agent (build's total_timesteps)",
        spec.entropy_field: "the entropy coefficient is set per agent from the sweep's list of alphas",
    }
    for name in spec.fixed:
        choices = ", ".join(f"{a}: {json.dumps(s.fixed[name])}" for a, s in _SPECS.items() if name in s.fixed)
        out[name] = f"set by the algorithm name ({choices})"
    return out


def _fields(spec: _Spec) -> list[tuple[str, dataclasses.Field, Any]]:
    """(target, field, resolved annotation) of every field: config first, then hparams."""
    out = []
    for target, cls in (("config", spec.config), ("hparams", spec.hparams)):
        hints = typing.get_type_hints(cls)
        out.extend((target, f, hints[f.name]) for f in dataclasses.fields(cls) if f.init)
    return out


def options(algo: str) -> list[Option]:
    """Every settable option of `algo`: config fields first, then hparams fields, in dataclass order."""
    spec, skip = _spec(algo), _not_settable(algo)
    return [
        Option(f.name, target, _type_name(hint), f.default, f.metadata.get("help", ""))
        for target, f, hint in _fields(spec)
        if f.name not in skip
    ]


# ---- values -------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    """A readable annotation: int, tuple[int, ...], tuple[int, ...] | None."""
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _show(value: Any) -> str:
    """A value as one would write it after `--set KEY=` (JSON, strings bare)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


class _Mismatch(Exception):
    """A value that does not fit a type (internal to `_convert`)."""


def _convert(value: Any, tp: Any) -> Any:
    """`value` as an instance of the annotation `tp`, or `_Mismatch`.

    Strict, except for the widenings that JSON and TOML need: a list for a tuple,
    an int for a float, and a float without a fractional part for an int (1e6)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return _convert(value, arm)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0]) for v in value)
        if len(args) != len(value):
            raise _Mismatch
        return tuple(_convert(v, a) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise TypeError(f"entrolab.agents.options cannot convert to the annotation {tp!r}")


def _unknown(algo: str, key: str, known: Sequence[str]) -> str:
    hint = _UNKNOWN_HINTS.get(algo, {}).get(key)
    if hint is None:
        others = [a for a in ALGOS if a != algo and any(o.name == key for o in options(a))]
        close = difflib.get_close_matches(key, known, n=3)
        if close:
            hint = f"did you mean {' or '.join(close)}?"
        elif others:
            hint = f"an option of {', '.join(others)} only"
    return f"{key}: unknown {algo} option" + (f" ({hint})" if hint else "")


# ---- task defaults ------------------------------------------------------------------------------
def task_defaults(algo: str, env: Any, env_params: Any = None) -> dict[str, Any]:
    """Options a task sets for `algo` unless the user gives them: PPO's initial log-std where the
    task has a natural noise scale (`Environment.default_init_log_std`, documented by each task).
    Merge them under the user's values: ``build(algo, {**task_defaults(algo, env), **values})``."""
    _spec(algo)
    out: dict[str, Any] = {}
    default_log_std = getattr(env, "default_init_log_std", None)
    if algo == "ppo" and callable(default_log_std):
        params = env.default_params if env_params is None else env_params
        value = default_log_std(params)
        if value is not None:
            out["init_log_std"] = float(value)
    return out


# ---- building the dataclasses -------------------------------------------------------------------
def build(
    algo: str,
    values: Mapping[str, Any],
    *,
    total_timesteps: int,
    reserved: Mapping[str, str] | None = None,
) -> tuple[Any, Any]:
    """The static config and traced hparams of `algo`, with `values` applied over the defaults.

    `values` maps option names (see `options(algo)`) to values, each converted to its
    field's annotated type. `total_timesteps` is always the argument; `adaent` follows the
    algorithm (sac: False, sac-adaent: True); the entropy coefficient (`ent_coef`, `alpha`)
    is set per agent by `train_sweep`, not here. `reserved` maps further option names to
    the reason they cannot be set here (e.g. {"plain_critic": "set by the study"}); it may
    also give a caller's own reason for the names above (e.g. {"ent_coef": "use --alpha"}).

    Raises `OptionError` with one line per unknown, reserved or ill-typed key (all of them),
    or with the messages of the dataclasses' own validation (`__post_init__`, `check`).
    """
    spec = _spec(algo)
    blocked = {**_not_settable(algo), **dict(reserved or {})}
    settable = {o.name for o in options(algo)} - set(blocked)
    fields = {f.name: (target, hint) for target, f, hint in _fields(spec)}
    known = [name for name in fields if name in settable]

    errors: list[str] = []
    kwargs: dict[str, dict[str, Any]] = {"config": {}, "hparams": {}}
    unknown = False
    for key, value in values.items():
        if key in blocked:
            errors.append(f"{key}: cannot be set here: {blocked[key]}")
        elif key not in settable:
            errors.append(_unknown(algo, key, known))
            unknown = True
        else:
            target, hint = fields[key]
            try:
                kwargs[target][key] = _convert(value, hint)
            except _Mismatch:
                errors.append(f"{key}: expected {_type_name(hint)}, got {_got(value)}")
    try:
        kwargs["config"]["total_timesteps"] = _convert(total_timesteps, fields["total_timesteps"][1])
    except _Mismatch:
        errors.append(f"total_timesteps: expected int, got {_got(total_timesteps)}")
    if unknown:
        errors.append(f"known {algo} options: {', '.join(known)}")
    if errors:
        raise OptionError(errors)

    kwargs["config"].update(spec.fixed)
    config = None
    try:
        config = spec.config(**kwargs["config"])
    except ValueError as err:
        errors.append(str(err))
    hparams = spec.hparams(**kwargs["hparams"])
    try:
        if spec.hparams is SACHParams:
            hparams.check(config)
        else:
            hparams.check()
    except ValueError as err:
        errors.append(str(err))
    if errors:
        raise OptionError(errors)
    return config, hparams


# ---- reading options ----------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    """A JSON literal, else a TOML inline value, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        pass
    else:
        if list(parsed) == ["value"]:  # not `1\nother = 2`
            return parsed["value"]
    return text


def parse_assignments(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """`["KEY=VALUE", ...]` as `{KEY: value}` (a later KEY wins).

    VALUE is a JSON literal (`512`, `1e-3`, `[256,256]`, `true`, `null`), else a TOML
    inline value (`[256, 256]`, `'relu'`, `inf`), else the raw string (`relu`)."""
    out: dict[str, Any] = {}
    errors = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(f"{flag} takes KEY=VALUE, got {item!r}")
            continue
        out[key] = _parse_value(value.strip())
    if errors:
        raise OptionError(errors)
    return out


def load_options(path: str | Path) -> dict[str, Any]:
    """The options of a TOML file, whose top-level keys are option names."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise OptionError(f"options file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptionError(f"options file {path} cannot be read: {err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise OptionError(f"options file {path} is not valid TOML: {err}") from None


# ---- documentation ------------------------------------------------------------------------------
def describe(algo: str) -> str:
    """A plain-text table of the options of `algo`: name, static/traced, type, default, help."""
    spec = _spec(algo)
    header = ("option", "kind", "type", "default", "help")
    rows = [
        (o.name, "static" if o.target == "config" else "traced", o.type, _show(o.default), o.help)
        for o in options(algo)
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]

    def aligned(row):
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1]

    lines = [
        (f"{algo} options: static = {spec.config.__name__} (changing one recompiles), "
         f"traced = {spec.hparams.__name__} (sweepable by vmap)"),
        "",
        aligned(header),
        aligned(tuple("-" * len(h) for h in header)),
        *(aligned(r) for r in rows),
        "",
        "Values are JSON (512, 1e-3, [256,256], true, null), TOML ('relu') or bare strings (relu).",
        "Not settable as options:",
        *(f"  {name}: {reason}" for name, reason in _not_settable(algo).items()),
    ]
    return "\n".join(text.rstrip() for text in lines)
