"""Parameters as data: each analysis declares its parameters once, as a frozen dataclass of `setting` fields, and
everything else is derived from it: the CLI flags, the audit.toml section, validation with one readable message,
and the content fingerprint a cached result is keyed by.

Why one declaration: a default written in the CLI, the cached entry point and the page drifts (issue 48 found
`clusterings=5` in four places); a declared field cannot. The fingerprint covers only the fields that change the
answer (`affects_result`), so where the work runs (`--scheduler`) never invalidates a cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from analysis.errors import AuditInputError

P = TypeVar("P", bound="Params")


def setting(
    default: Any = None,
    *,
    help: str,
    flag: str | None = None,
    choices: tuple[Any, ...] | None = None,
    metavar: str | None = None,
    minimum: float | None = None,
    in_toml: bool = True,
    in_cli: bool = True,
    affects_result: bool = True,
) -> Any:
    """One parameter: its default, the help of its flag (`--name-with-dashes` unless `flag` says otherwise), its
    allowed values, whether audit.toml may set it, and whether it changes the result (and so the cache key)."""
    metadata = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "metavar": metavar,
        "minimum": minimum,
        "in_toml": in_toml,
        "in_cli": in_cli,
        "affects_result": affects_result,
    }
    return field(default=default, metadata=metadata)


class ParamError(AuditInputError):
    """A parameter value that its declaration does not allow; `name` is the field, so that the CLI can name the
    flag and a workspace the audit.toml key."""

    def __init__(self, name: str, problem: str, fix: str | None = None) -> None:
        self.name, self.problem, self.hint = name, problem, fix
        super().__init__(f"{name} {problem}.", fix=fix)


@dataclass(frozen=True)
class _Kind:
    """What a field's annotation allows: the base type, whether None is allowed, whether it repeats."""

    base: type
    optional: bool
    repeated: bool
    choices: tuple[Any, ...] | None = None  # a Literal annotation's values


def _kind(annotation: Any) -> _Kind:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    optional = False
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        optional = len(members) < len(args)
        (annotation,) = members
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        return _Kind(args[0], optional, True)
    if origin is typing.Literal:
        return _Kind(type(args[0]), optional, False, tuple(args))
    return _Kind(annotation, optional, False)


def _coerce(name: str, kind: _Kind, value: Any) -> Any:
    """The value as the field's type (TOML gives lists for tuples and ints for floats), or a ParamError."""
    if value is None:
        if kind.optional:
            return None
        raise ParamError(name, "must be given")
    if kind.repeated:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ParamError(name, f"must be a list of {kind.base.__name__} values, not {value!r}")
        return tuple(_coerce_one(name, kind.base, item) for item in value)
    return _coerce_one(name, kind.base, value)


def _coerce_one(name: str, base: type, value: Any) -> Any:
    if base is bool:
        if not isinstance(value, bool):
            raise ParamError(name, f"must be true or false, not {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(name, f"must be a whole number, not {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(name, f"must be a number, not {value!r}")
        return float(value)
    if base is Path:
        if not isinstance(value, str | Path):
            raise ParamError(name, f"must be a path, not {value!r}")
        return Path(value)
    if not isinstance(value, base):
        raise ParamError(name, f"must be a {base.__name__}, not {value!r}")
    return value


@dataclass(frozen=True)
class Params:
    """The base of every analysis's parameters. A subclass is a frozen dataclass whose fields are `setting`s;
    `check` adds the rules that join fields. Constructing one validates it, so a Params that exists is valid."""

    section: ClassVar[str] = ""  # its audit.toml section (the analysis's name), set by the analysis

    def __post_init__(self) -> None:
        kinds = self.kinds()
        for spec in fields(self):
            value = _coerce(spec.name, kinds[spec.name], getattr(self, spec.name))
            choices = spec.metadata.get("choices") or kinds[spec.name].choices
            minimum = spec.metadata.get("minimum")
            values = value if kinds[spec.name].repeated else (value,)
            for item in values if value is not None else ():
                if choices is not None and item not in choices:
                    raise ParamError(
                        spec.name, f"is {item!r}", fix=f"use one of {', '.join(str(choice) for choice in choices)}."
                    )
                if minimum is not None and item < minimum:
                    raise ParamError(spec.name, f"must be at least {minimum:g}, not {item!r}")
            object.__setattr__(self, spec.name, value)
        self.check()

    def check(self) -> None:
        """Rules that join fields; raise ParamError naming the field at fault."""

    def given(self, name: str) -> Any:
        """The value of a parameter that this use needs (an optional one that an action requires)."""
        value = getattr(self, name)
        if value is None:
            raise ParamError(name, "must be given")
        return value

    @classmethod
    def kinds(cls) -> dict[str, _Kind]:
        hints = typing.get_type_hints(cls)
        return {spec.name: _kind(hints[spec.name]) for spec in fields(cls)}

    # --- the CLI -------------------------------------------------------------------------------------------------

    @classmethod
    def flag(cls, name: str) -> str:
        spec = next(spec for spec in fields(cls) if spec.name == name)
        return spec.metadata.get("flag") or "--" + name.replace("_", "-")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, choices: Mapping[str, tuple[Any, ...]] = {}) -> None:
        """One flag per CLI field. A flag not given is absent from the parsed options (SUPPRESS), so that
        `from_options` can tell "not given" (the workspace's setting applies) from "given as the default".
        `choices` gives the allowed values known only to an instance (the review kinds the registry wires)."""
        kinds = cls.kinds()
        for spec in fields(cls):
            meta = spec.metadata
            if not meta.get("in_cli", True):
                continue
            kind = kinds[spec.name]
            extra: dict[str, Any] = {"dest": spec.name, "default": argparse.SUPPRESS, "help": meta["help"]}
            if kind.base is bool and not kind.repeated:
                extra["action"] = "store_true"
            else:
                extra["type"] = kind.base
                if kind.repeated:
                    extra["action"] = "append"
                allowed = choices.get(spec.name, meta.get("choices") or kind.choices)
                if allowed is not None:
                    extra["choices"] = allowed
                if meta.get("metavar"):
                    extra["metavar"] = meta["metavar"]
            parser.add_argument(cls.flag(spec.name), **extra)

    @classmethod
    def from_options(cls: type[P], options: argparse.Namespace, base: P | None = None) -> P:
        """`base` (the defaults, or the workspace's settings) with the flags that were given; a bad value is named
        by its flag."""
        given = {spec.name: getattr(options, spec.name) for spec in fields(cls) if hasattr(options, spec.name)}
        try:
            return dataclasses.replace(base if base is not None else cls(), **given)
        except ParamError as exc:
            raise AuditInputError(f"{cls.flag(exc.name)} {exc.problem}.", fix=exc.hint) from None

    # --- audit.toml ----------------------------------------------------------------------------------------------

    @classmethod
    def toml_keys(cls) -> list[str]:
        return [spec.name for spec in fields(cls) if spec.metadata.get("in_toml", True)]

    @classmethod
    def from_toml(cls: type[P], body: Mapping[str, Any], where: Path | str | None = None) -> P:
        """The parameters a workspace's `[section]` sets, the rest at their defaults; an unknown key or a bad
        value is named with its section."""
        allowed = cls.toml_keys()
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise AuditInputError(
                f"unknown key(s) {unknown} in [{cls.section}].",
                path=where,
                fix=f"allowed keys there: {', '.join(allowed) or '(none)'}.",
            )
        try:
            return cls(**dict(body))
        except ParamError as exc:
            raise AuditInputError(f"[{cls.section}] {exc.name} {exc.problem}.", path=where, fix=exc.hint) from None

    def to_toml(self) -> dict[str, Any]:
        """The audit.toml section that sets these parameters (None is left out: TOML has no null, and every
        optional parameter defaults to None)."""
        body: dict[str, Any] = {}
        for name in self.toml_keys():
            value = getattr(self, name)
            if value is None:
                continue
            body[name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return body

    # --- identity ------------------------------------------------------------------------------------------------

    def result_values(self) -> dict[str, Any]:
        """The fields that change the answer, as JSON values."""
        return {
            spec.name: _json_value(getattr(self, spec.name))
            for spec in fields(self)
            if spec.metadata.get("affects_result", True)
        }

    def fingerprint(self) -> str:
        """A content key of what changes the answer: equal parameters, equal key; any change of a result field, a
        new key."""
        text = json.dumps({"params": type(self).__qualname__, **self.result_values()}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    return value


@dataclass(frozen=True)
class NoParams(Params):
    """The parameters of an analysis that has none."""
