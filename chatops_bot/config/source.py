"""Reading config.yaml before it is validated: strict YAML, `${ENV}` expansion, `*_file` secrets, relative
paths anchored at the file, and pydantic's errors put in our words with the key path they concern."""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr

from chatops_bot.config.types import ConfigError, PendingSecret


class StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (the second `review:` block would silently replace the first)
    and reads only true and false as booleans: `yes`, `no`, `on` and `off` stay words, so a flag
    written `yes` is refused by name rather than taken as true, and a role named `no` stays `no`."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def anchor_paths(value: Any, base: Path) -> Any:
    """Relative `*_file` paths are relative to the config file, not to wherever the bot was started."""
    if isinstance(value, list):
        return [anchor_paths(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    anchored = {}
    for key, item in value.items():
        if isinstance(key, str) and key.endswith("_file") and isinstance(item, str) and item:
            if not item.startswith(("/", "~", "${")):
                item = str(base / item)
        anchored[key] = anchor_paths(item, base)
    return anchored


def read_yaml(path: str | Path, label: str) -> dict[str, Any]:
    """The file's top-level mapping; a problem with the file as a whole is named by the file."""
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=StrictLoader)
    except OSError as exc:
        raise ConfigError([f"{label}: cannot read it: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{label}: cannot read it: not UTF-8 text"]) from None
    except yaml.MarkedYAMLError as exc:
        # The parser's own words only: str(exc) quotes the offending line, which may hold a secret.
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError([f"{label}: not valid YAML{line}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{label}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    if not isinstance(raw, dict | None):
        raise ConfigError([f"{label}: must be a mapping of sections (teleport:, slack:, ...)"])
    return raw or {}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Found = list[tuple[str, str]]
Env = Mapping[str, str]


class Resolver:
    """Expands `${ENV}`, drops empty keys (they take their defaults) and reads secrets' `*_file` keys,
    collecting (key path, problem); with `secrets=False` a secret that is not at hand is left pending."""

    def __init__(self, env: Env, *, secrets: bool) -> None:
        self.env = env
        self.secrets = secrets
        self.found: Found = []

    def resolve(self, value: Any, model: type[BaseModel] | None, where: str) -> Any:
        if isinstance(value, str):
            return self._expand(value, where)
        if isinstance(value, list):
            return [self.resolve(item, None, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        fields = model.model_fields if model else {}
        resolved = {}
        for key, item in value.items():
            if item is None:
                continue
            field = fields.get(key) if isinstance(key, str) else None
            if field is not None and not self.secrets and is_secret(field.annotation):
                item = self._unless_pending(item, join(where, key), get_origin(field.annotation) is tuple)
            if not isinstance(item, PendingSecret | tuple):
                item = self.resolve(item, model_in(field.annotation) if field else None, join(where, key))
            resolved[key] = item
        for name, field in fields.items():
            if f"{name}_file" in resolved and is_secret(field.annotation):
                self._read_secret_file(resolved, name, get_origin(field.annotation) is tuple, where)
        return resolved

    def _expand(self, text: str, where: str) -> str:
        if text.count("${") != len(_ENV_REF.findall(text)):
            # Never quote the value: it may be a secret.
            self.found.append((where, "has a `${` that does not start a ${VARIABLE} reference (is a `}` "
                                      "missing, or the name not made of letters, digits and _?)"))
            return text

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) in self.env:
                return self.env[match.group(1)]
            self.found.append((where, f"environment variable {match.group(1)} is not set"))
            return match.group(0)

        return _ENV_REF.sub(substitute, text)

    def _unless_pending(self, item: Any, where: str, many: bool) -> Any:
        """`item`, or a PendingSecret (in a tuple when `many`) when it names a variable not set yet."""
        texts = item if isinstance(item, list) else [item]
        unset = [name for text in texts if isinstance(text, str) for name in _ENV_REF.findall(text)
                 if name not in self.env]
        if not unset:
            return item
        pending = PendingSecret(f"${{{unset[0]}}} not set yet")
        return (pending,) if many else pending

    def _read_secret_file(self, data: dict[str, Any], name: str, many: bool, where: str) -> None:
        file_key = join(where, f"{name}_file")
        file_path = data.pop(f"{name}_file")
        if name in data:
            self.found.append((file_key, f"set {name} or {name}_file, not both"))
            return
        if not self.secrets:
            # The file may not exist yet, or be readable only by the bot's own user: read it when used.
            pending = PendingSecret(f"read from {file_path} when used")
            data[name] = (pending,) if many else pending
            return
        try:
            text = Path(str(file_path)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.found.append((file_key, f"cannot read {file_path}: {reason}"))
            return
        data[name] = [line.strip() for line in text.splitlines() if line.strip()] if many else text


def join(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def key_path(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where = where if part == "[key]" else join(where, part)
    return where


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "greater_than_equal": "must be at least {ge}",
}


def message(error: Any, root: type[BaseModel]) -> str:
    """Pydantic's error in our words; pydantic's messages never quote the input, so no secret shows."""
    ctx = error.get("ctx") or {}
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"], root)
    if error["type"] == "literal_error":
        return "must be one of " + str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
    if error["type"] == "missing" and _is_secret_at(error["loc"], root):
        key = str(error["loc"][-1])
        return f"required: write it as ${{VARIABLE}} (an environment variable) or name a file with `{key}_file`"
    template = _MESSAGES.get(error["type"])
    return template.format(**ctx) if template else str(error["msg"])


def _section_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The section (model) that holds the last key of `loc`."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model and isinstance(part, str) else None
        if field is not None:
            model = model_in(field.annotation)
    return model


def _is_secret_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> bool:
    model = _section_at(loc, root)
    field = model.model_fields.get(str(loc[-1])) if model is not None and loc else None
    return field is not None and is_secret(field.annotation)


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    """`unknown key`, with the nearest key the section does have when one is close (difflib)."""
    model = _section_at(loc, root)
    key = str(loc[-1])
    if model is None:
        return "unknown key"
    if key.removesuffix("_file") in model.model_fields and key.endswith("_file"):
        return f"unknown key `{key}`: only secrets may be read from a file; set {key.removesuffix('_file')}"
    known = [name for name, field in model.model_fields.items() if name != key]
    known += [f"{name}_file" for name, field in model.model_fields.items() if is_secret(field.annotation)]
    nearest = get_close_matches(key, known, n=1)
    return f"unknown key `{key}`; did you mean `{nearest[0]}`?" if nearest else "unknown key"


def model_in(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((model for arg in get_args(annotation) if (model := model_in(arg))), None)


def is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(is_secret(arg) for arg in get_args(annotation))
