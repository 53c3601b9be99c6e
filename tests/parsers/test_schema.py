"""Argument coercion to the tool's JSON schema."""

import pytest

from dsv32_plugin.parsers.schema import allows_string, coerce, schema_types

INT, STR, NUM, BOOL = {"type": "integer"}, {"type": "string"}, {"type": "number"}, {"type": "boolean"}


@pytest.mark.parametrize(
    ("value", "source", "schema", "expected"),
    [
        pytest.param("42", "42", INT, 42, id="int-from-string"),
        pytest.param(7, "7", STR, "7", id="string-from-number"),
        pytest.param(7.50, "7.50", STR, "7.50", id="string-keeps-raw-spelling"),
        pytest.param(42.0, "42.0", INT, 42, id="integral-float-to-int"),
        pytest.param("2.5", "2.5", NUM, 2.5, id="number-from-string"),
        pytest.param("12", "12", NUM, 12, id="number-schema-int-text"),
        pytest.param("True", "True", BOOL, True, id="bool-from-string"),
        pytest.param("x", "x", INT, "x", id="unconvertible-kept"),
        pytest.param("42", "42", {"type": ["integer", "null"]}, 42, id="type-list"),
        pytest.param("42", "42", {"type": ["integer", "string"]}, "42", id="type-list-admits-raw"),
        pytest.param("null", "null", {"type": ["integer", "null"]}, None, id="null-from-string"),
        pytest.param("5", "5", {"anyOf": [{"type": "integer"}, {"type": "array"}]}, 5, id="anyOf"),
        pytest.param("[1, 2]", "[1, 2]", {"type": "array"}, [1, 2], id="array-from-string"),
        pytest.param('{"a": "1"}', '{"a": "1"}', {"type": "object", "properties": {"a": INT}}, {"a": 1},
                     id="object-from-string-nested-coercion"),
        pytest.param(["1", "x"], '["1", "x"]', {"type": "array", "items": INT}, [1, "x"], id="array-items"),
        pytest.param("NaN", "NaN", NUM, "NaN", id="nan-not-a-number"),
        pytest.param("1e999", "1e999", NUM, "1e999", id="infinite-not-a-number"),
        pytest.param("v", "v", {"$ref": "#/defs/x"}, "v", id="ref-admits-anything"),
        pytest.param(3, "3", {"enum": ["a", "b"]}, "3", id="enum-of-strings"),
        pytest.param("x", "x", None, "x", id="no-schema"),
    ],
)
def test_coerce(value, source, schema, expected):
    result = coerce(value, source, schema)
    assert result == expected and type(result) is type(expected)


def test_schema_types_and_string_admission():
    assert schema_types({"anyOf": [{"type": "integer"}, {}]}) == frozenset()  # a branch admits anything
    assert schema_types({"oneOf": [{"type": "integer"}, {"type": "null"}]}) == {"integer", "null"}
    assert allows_string(None) and allows_string({"type": ["string", "null"]}) and not allows_string(INT)
