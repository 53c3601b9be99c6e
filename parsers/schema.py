"""Coerce tool-call argument values to the type the tool's JSON schema declares.

The model writes each value in one raw form (DSML ``string="true"`` text, or
JSON).  When that form's JSON type is one the schema admits, the value is kept;
otherwise the raw text is converted to the first admitted type it parses as
(integer schema + "42" -> 42; string schema + 7 -> "7").  A value that fits no
admitted type is kept as written.  Schemas without a usable ``type`` (absent,
``$ref``, ...) admit anything.  Nothing here raises on bad input.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Optional

# Tried in this order when the raw form's type is not admitted; string last,
# since every raw text is a valid string.
_CONVERSION_ORDER = ("object", "array", "integer", "number", "boolean", "null", "string")
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


def reject_constant(name: str) -> Any:
    """``parse_constant`` hook: NaN/Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


def loads_strict(text: str) -> Any:
    """``json.loads`` without NaN/Infinity (they would make the arguments invalid JSON)."""
    return json.loads(text, parse_constant=reject_constant)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_types(schema: Any) -> frozenset[str]:
    """JSON types ``schema`` admits; empty means any."""
    if not isinstance(schema, dict):
        return frozenset()
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset((declared,))
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    for union in ("anyOf", "oneOf"):
        branches = schema.get(union)
        if isinstance(branches, list) and branches:
            types: set[str] = set()
            for branch in branches:
                branch_types = schema_types(branch)
                if not branch_types:
                    return frozenset()
                types |= branch_types
            return frozenset(types)
    for key in ("enum", "const"):
        if key in schema:
            values = schema[key] if key == "enum" and isinstance(schema[key], list) else [schema[key]]
            return frozenset(json_type(v) for v in values)
    return frozenset()


def property_schema(parameters: Any, name: str) -> Optional[dict]:
    """Schema of argument ``name`` inside a tool's ``parameters`` schema."""
    if not isinstance(parameters, dict):
        return None
    properties = parameters.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get(name), dict):
        return properties[name]
    return None


def allows_string(schema: Any) -> bool:
    types = schema_types(schema)
    return not types or "string" in types


def _admitted(value: Any, types: frozenset[str]) -> bool:
    kind = json_type(value)
    if kind in types:
        return True
    if kind == "integer" and "number" in types:
        return True
    return kind == "number" and "integer" in types and value.is_integer()


def _convert(source: str, kind: str) -> tuple[bool, Any]:
    text = source.strip()
    if kind == "string":
        return True, source
    if kind == "integer" and _INTEGER.fullmatch(text):
        return True, int(text)
    if kind == "number" and _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return True, int(text) if _INTEGER.fullmatch(text) else number
    if kind == "boolean" and text.lower() in ("true", "false"):
        return True, text.lower() == "true"
    if kind == "null" and text == "null":
        return True, None
    if kind in ("object", "array") and text[:1] in "{[":
        try:
            value = loads_strict(text)
        except ValueError:
            return False, None
        if json_type(value) == kind:
            return True, value
    return False, None


def _nested(value: Any, schema: dict) -> Any:
    """Coerce members of objects and arrays against their sub-schemas."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: coerce(v, _source(v), property_schema(schema, k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce(v, _source(v), schema["items"]) for v in value]
    return value


def _source(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def coerce(value: Any, source: str, schema: Any) -> Any:
    """``value`` as parsed from its raw form, converted to a type ``schema`` admits.

    ``source`` is the text conversions start from: the string itself for a
    string value, the raw JSON text otherwise.
    """
    types = schema_types(schema)
    if not types:
        return value
    if _admitted(value, types):
        if json_type(value) == "number" and "number" not in types:
            value = int(value)  # 42.0 for an integer schema
        return _nested(value, schema)
    for kind in _CONVERSION_ORDER:
        if kind in types:
            ok, converted = _convert(source, kind)
            if ok:
                return _nested(converted, schema)
    return value
