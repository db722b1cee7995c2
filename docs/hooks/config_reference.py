"""mkdocs hook: the configuration reference, generated from the pydantic models at build time.

A page holding the line `<!-- config-reference -->` gets, in its place, one table per config table
(`[database]`, `[storage]`, `[source]`, `[models.<name>]` and its sub-tables), each key with its type,
bounds and default read from `forecasting.config.settings.Settings` and
`forecasting.config.model_settings.ModelConfig`, and its meaning from the field's `description` or,
else, from `config_keys.yml` beside this file. A key without an explanation, or an explanation for a
key the models do not have, is a warning, so `mkdocs build --strict` fails: the reference cannot
drift from the code.
"""

from __future__ import annotations

import json
import logging
import sys
import types
import typing
from pathlib import Path

import yaml

log = logging.getLogger("mkdocs.hooks.config_reference")

MARKER = "<!-- config-reference -->"
EXPLANATIONS = Path(__file__).with_name("config_keys.yml")
INLINE_MODELS = ("IntRange", "FloatRange")  # small value tables shown inline, as `{ min, max, step }`


def on_config(config, **kwargs):
    """Read the models of this checkout, not of another installed copy of the package."""
    root = str(Path(config.config_file_path).resolve().parent)
    if sys.path[0] != root:
        sys.path.insert(0, root)
    for name in [name for name in sys.modules if name == "forecasting" or name.startswith("forecasting.")]:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if not module_file.startswith(root):
            del sys.modules[name]
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())


def reference() -> str:
    from pydantic import BaseModel

    from forecasting.config.settings import Settings

    explanations = yaml.safe_load(EXPLANATIONS.read_text()) or {}
    used: set[str] = set()
    out: list[str] = []

    def explain(key: str, field) -> str:
        parts = []
        if field is not None and field.description:
            parts.append(field.description.strip())
        if key in explanations:
            used.add(key)
            parts.append(" ".join(str(explanations[key]).split()))
        if not parts:
            log.warning("config reference: key %s has no explanation (add a Field description or an entry in %s)", key, EXPLANATIONS.name)
            return ""
        return " ".join(parts)

    def table(prefix: str, title: str, model: type[BaseModel], intro_key: str | None, intro_field) -> None:
        out.append(f"### `[{title}]`\n")
        if intro_key:
            text = explain(intro_key, intro_field)
            if text:
                out.append(text + "\n")
        rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
        nested = []
        for name, field in model.model_fields.items():
            key = field.alias or name
            sub = _sub_model(field.annotation)
            if sub is not None and sub.__name__ not in INLINE_MODELS:
                many = _is_list(field.annotation)
                sub_prefix = f"{prefix}.{key}" + ("[]" if many else "")
                nested.append((sub_prefix, f"[{prefix}.{key}]" if many else sub_prefix, sub, f"{prefix}.{key}", field))
                kind = "list of tables, see below" if many else "table, see below"
                rows.append(f"| `{key}` | {kind} | {_default(field)} | {_first_sentence(explain(f'{prefix}.{key}', field))} |")
                continue
            rows.append(f"| `{key}` | {_type(field.annotation)}{_bounds(field)} | {_default(field)} | {_cell(explain(f'{prefix}.{key}', field))} |")
        out.append("\n".join(rows) + "\n")
        for sub_prefix, title, sub, key, field in nested:
            table(sub_prefix, title, sub, key, field)

    for name, field in Settings.model_fields.items():
        key = field.alias or name
        sub = _sub_model(field.annotation)
        if typing.get_origin(field.annotation) is dict:
            table(f"{key}.<name>", f"{key}.<name>", sub, key, field)
        else:
            table(key, key, sub, key, field)

    for key in sorted(set(explanations) - used):
        log.warning("config reference: %s explains %s, which the config models do not have", EXPLANATIONS.name, key)
    return "\n".join(out)


def _sub_model(annotation):
    """The pydantic model inside an annotation (X, X | None, list[X], dict[str, X]), or None."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _sub_model(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if _is_union(annotation) else [annotation]
    return any(typing.get_origin(a) is list for a in args)


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _type(annotation) -> str:
    from pydantic import BaseModel

    if _is_union(annotation):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_type(a) for a in args)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{_toml(v)}`" for v in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"list of {_plural(_type(item))}"
    if origin is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = ", ".join(_inline_field(name, field) for name, field in annotation.model_fields.items())
        inner = {_plural(_type(field.annotation)) for field in annotation.model_fields.values()}
        return f"`{{ {fields} }}` of {' or '.join(sorted(inner))}"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _inline_field(name: str, field) -> str:
    if field.is_required():
        return name
    value = field.get_default(call_default_factory=True)
    return f"[{name}]" if value is None else f"{name} = {_toml(value)}"


def _plural(text: str) -> str:
    if text.startswith("one of "):
        return "values, each " + text
    return {"string": "strings", "integer": "integers", "number": "numbers"}.get(text, text)


def _bounds(field) -> str:
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    parts = []
    for item in field.metadata:
        for attr, sign in signs.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {_toml(value)}")
        if getattr(item, "min_length", None):
            parts.append(f"at least {item.min_length} {'entry' if item.min_length == 1 else 'entries'}")
        if getattr(item, "max_length", None):
            parts.append(f"at most {item.max_length} entries")
    return (", " + ", ".join(parts)) if parts else ""


def _default(field) -> str:
    from pydantic import BaseModel

    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel) and type(value).__name__ not in INLINE_MODELS:
        return ""
    return f"`{_toml(value)}`"


def _toml(value) -> str:
    """A value as it is written in forecasting.toml."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True) if type(value).__name__ not in INLINE_MODELS else value.model_dump(exclude_none=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _first_sentence(text: str) -> str:
    return _cell(text.split(". ")[0].rstrip(".") + ".") if text else ""
