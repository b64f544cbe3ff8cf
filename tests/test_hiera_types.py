"""renderer.hiera.types.instance: Puppet's ``Type.instance?`` for every type name it knows, with
the cases that tell the families apart (a Boolean is not an Integer, a Sensitive is RichData but
not Data, ``Optional['x']`` is an Enum of one). Convert_to and ``render lookup --type`` rely on it;
the conformance suite checks them against Puppet."""

from __future__ import annotations

import re
from typing import Any

import pytest

from renderer.hiera import Sensitive
from renderer.hiera.types import DEFAULT, PType, TypeSyntaxError, instance, parse

SECRET = Sensitive("pw")

CASES: list[tuple[str, Any, bool]] = [
    # Any, Data, RichData, Scalar, ScalarData, Undef
    ("Any", None, True), ("Any", SECRET, True), ("Any", object(), True),
    ("Data", {"a": [1, 2.5, True, None, "s"]}, True), ("Data", None, True),
    ("Data", SECRET, False), ("Data", [SECRET], False), ("Data", {1: "a"}, False),
    ("RichData", SECRET, True), ("RichData", {"a": 1}, True), ("RichData", [SECRET], False),
    ("RichData", object(), False),
    ("Scalar", "s", True), ("Scalar", 1, True), ("Scalar", 1.5, True), ("Scalar", False, True),
    ("Scalar", None, False), ("Scalar", [1], False), ("Scalar", SECRET, False),
    ("ScalarData", True, True), ("ScalarData", {}, False),
    ("Undef", None, True), ("Undef", "", False), ("Undef", False, False),
    # Optional, NotUndef
    ("Optional", None, True), ("Optional", 1, True),
    ("Optional[Integer]", None, True), ("Optional[Integer]", 3, True),
    ("Optional[Integer]", "3", False), ("Optional['x']", "x", True),
    ("Optional['x']", "y", False), ("Optional['x']", None, True),
    ("NotUndef", None, False), ("NotUndef", 0, True), ("NotUndef[String]", "s", True),
    ("NotUndef[String]", 1, False), ("NotUndef[String]", None, False),
    ("NotUndef['x']", "x", True), ("NotUndef['x']", "X", False),
    # Integer, Float, Numeric, Boolean
    ("Integer", 5, True), ("Integer", True, False), ("Integer", 5.0, False),
    ("Integer", "5", False), ("Integer[0, 10]", 10, True), ("Integer[0, 10]", 11, False),
    ("Integer[0, 10]", -1, False), ("Integer[0]", 10 ** 30, True), ("Integer[0]", -1, False),
    ("Integer[default, 3]", -(10 ** 30), True), ("Integer[default, 3]", 4, False),
    ("Integer[-0x10, 0x10]", -16, True), ("Integer[-0x10, 0x10]", 17, False),
    ("Float", 1.5, True), ("Float", 1, False), ("Float", float("nan"), False),
    ("Float[0.5, 1.5]", 1.5, True), ("Float[0.5, 1.5]", 0.25, False),
    ("Float[0, 1]", float("inf"), False), ("Float[0]", float("inf"), True),
    ("Numeric", 1, True), ("Numeric", 1.5, True), ("Numeric", False, False),
    ("Numeric", "1", False), ("Numeric[1, 2]", 1.5, True), ("Numeric[1, 2]", 2.5, False),
    ("Boolean", True, True), ("Boolean", False, True), ("Boolean", 0, False),
    ("Boolean", "true", False),
    # String, Enum, Pattern
    ("String", "", True), ("String", 1, False), ("String", SECRET, False),
    ("String[1]", "", False), ("String[1]", "a", True), ("String[1, 2]", "abc", False),
    ("String[default, 2]", "ab", True), ("String[2, default]", "a", False),
    ("Enum", "anything", True), ("Enum", 1, False),
    ("Enum[a, b]", "a", True), ("Enum['a', 'b']", "b", True), ("Enum[a, b]", "A", False),
    ("Enum[a, b]", "c", False), ("Enum[a, b]", 1, False),
    ("Enum[a, 'B', true]", "true", True), ("Enum[a, 'B', true]", "A", False),
    ("Pattern", "x", True), ("Pattern", 1, False),
    ("Pattern[/^a/]", "abc", True), ("Pattern[/^a/]", "bac", False),
    ("Pattern[/^a/, /c$/]", "bac", True), ("Pattern['^b']", "bac", True),
    ("Pattern['^b']", "abc", False), ("Pattern[/^a$/]", "x\na", True),
    ("Pattern[/a/]", ["a"], False),
    # Array, Tuple
    ("Array", [], True), ("Array", [1, "a", None], True), ("Array", (1,), False),
    ("Array", {}, False), ("Array", "a", False),
    ("Array[String]", ["a", "b"], True), ("Array[String]", ["a", 1], False),
    ("Array[String]", [], True), ("Array[String, 1]", [], False),
    ("Array[String, 1, 2]", ["a", "b", "c"], False), ("Array[Integer, 2]", [1, 2], True),
    ("Array[1, 2]", [None], True), ("Array[1, 2]", [], False), ("Array[1]", [1, 2, 3], True),
    ("Array[Array[Integer]]", [[1], []], True), ("Array[Array[Integer]]", [[1], ["a"]], False),
    ("Tuple", [], True), ("Tuple", [1, 2], False), ("Tuple", {}, False),
    ("Tuple[String, Integer]", ["a", 1], True), ("Tuple[String, Integer]", ["a"], False),
    ("Tuple[String, Integer]", [1, "a"], False), ("Tuple[String, Integer]", ["a", 1, 2], False),
    ("Tuple[String, Integer, 1]", ["a"], True),
    ("Tuple[String, Integer, 1]", ["a", 1, 2, 3], True),
    ("Tuple[String, Integer, 1]", ["a", 1, "x"], False),
    ("Tuple[String, Integer, 1, 2]", ["a", 1, 2], False),
    ("Tuple[String, 0, 3]", ["a", "b", "c"], True), ("Tuple[String, 0, 3]", [], True),
    ("Tuple[String, 0, 3]", ["a", 2], False), ("Tuple[0, 2]", [1, 2], True),
    ("Tuple[0, 2]", [1, 2, 3], False),
    # Hash, Collection
    ("Hash", {}, True), ("Hash", {"a": SECRET}, True), ("Hash", [], False),
    ("Hash[String, Integer]", {"a": 1}, True), ("Hash[String, Integer]", {"a": "1"}, False),
    ("Hash[String, Integer]", {1: 1}, False), ("Hash[String, Integer]", {}, True),
    ("Hash[String, Integer, 1]", {}, False), ("Hash[String, Integer, 1, 1]", {"a": 1, "b": 2},
                                              False),
    ("Hash[1]", {}, False), ("Hash[1]", {"a": 1}, True), ("Hash[0, 1]", {"a": 1, "b": 2}, False),
    ("Hash[String, 1]", {}, True),
    ("Collection", [], True), ("Collection", {}, True), ("Collection", "ab", False),
    ("Collection[1]", [], False), ("Collection[1, 2]", {"a": 1}, True),
    ("Collection[1, 2]", [1, 2, 3], False),
    # Variant, Sensitive
    ("Variant", 1, False), ("Variant[String, Integer]", 1, True),
    ("Variant[String, Integer]", "a", True), ("Variant[String, Integer]", 1.5, False),
    ("Variant[Undef, Array[String]]", None, True),
    ("Sensitive", SECRET, True), ("Sensitive", "pw", False),
    ("Sensitive[String]", SECRET, True), ("Sensitive[Integer]", SECRET, False),
    ("Sensitive[String[3]]", SECRET, False),
    # names instance does not know
    ("Struct", {}, False), ("Struct[String]", {}, False),
    ("Timestamp", "2020-01-01", False), ("Nope", None, False), ("Default", DEFAULT, False),
]


@pytest.mark.parametrize(("text", "value", "expected"), CASES,
                         ids=[f"{t}-{v!r}" for t, v, _ in CASES])
def test_instance(text: str, value: Any, expected: bool) -> None:
    assert instance(parse(text), value) is expected


def test_instance_of_types_built_without_parse() -> None:
    """Parameters parse cannot produce: a compiled pattern and a Sensitive of an Optional."""
    assert instance(PType("Pattern", [re.compile("^a")]), "ab")
    assert not instance(PType("Pattern", [re.compile("^a")]), "ba")
    assert instance(PType("Optional", [None]), 1)
    assert instance(PType("Sensitive", [PType("Optional", [])]), Sensitive(None))
    assert instance(PType("Integer", [DEFAULT, DEFAULT]), -(10 ** 40))
    assert instance(PType("String", [0, 0]), "")


def test_enum_case_fold() -> None:
    """A True last parameter folds case (parse reads ``true`` as a name, not this flag)."""
    fold = PType("Enum", ["a", "B", True])
    assert instance(fold, "A") and instance(fold, "b") and instance(fold, "a")
    assert not instance(fold, "c") and not instance(fold, 1)
    assert instance(PType("Enum", [True]), "x") is False


def test_hash_with_one_type_parameter_is_not_checked() -> None:
    """Pinned as it is: ``Hash[String]`` compares the type with the size (a TypeError)."""
    with pytest.raises(TypeError):
        instance(parse("Hash[String]"), {})


@pytest.mark.parametrize("text", ["integer", "Array[", "Array[String", "Array[String,]x",
                                  "Integer[0,,1]", "", "Hash[String Integer]"])
def test_not_a_type(text: str) -> None:
    with pytest.raises(TypeSyntaxError):
        parse(text)


def test_parse_and_show() -> None:
    assert str(parse("Array[ String[1] ,2]")) == "Array[String[1], 2]"
    assert str(parse("Integer[default, 0x10]")) == "Integer[default, 16]"
    assert str(parse("Enum['a b', \"c\\\"d\"]")) == "Enum['a b', 'c\"d']"
    assert str(parse("Pattern[/a\\/b/]")) == "Pattern[/a\\/b/]"
    assert str(parse("Float[-1.5e3]")) == "Float[-1500.0]"
