"""Registry: registration, building, listing, parameters, and errors that name the valid choices."""

from __future__ import annotations

import pytest

from auglens.registry import Registry, UnknownNameError


@pytest.fixture
def shapes() -> Registry:
    registry: Registry = Registry("shape")

    @registry.register("square")
    def square(side: float = 1.0) -> float:
        """Area of a square.

        More text that describe() leaves out."""
        return side * side

    @registry.register("rectangle")
    class Rectangle:
        def __init__(self, width: float, height: float = 2.0, *args, **kwargs):
            self.area = width * height

    return registry


def test_build_names_membership_and_iteration(shapes):
    assert shapes.build("square", side=3.0) == 9.0
    assert shapes.build("rectangle", width=2.0).area == 4.0
    assert shapes.names() == ["rectangle", "square"] == list(shapes)
    assert "square" in shapes and "circle" not in shapes


def test_unknown_name_suggests_the_closest_and_lists_all(shapes):
    with pytest.raises(UnknownNameError) as info:
        shapes.get("squre")
    message = str(info.value)
    assert message == "unknown shape 'squre'. Did you mean 'square'? Valid names: rectangle, square"
    assert isinstance(info.value, KeyError)
    assert "Did you mean" not in shapes.unknown_message("zzzz")


def test_registering_a_name_twice_is_an_error(shapes):
    with pytest.raises(ValueError, match="shape 'square' is registered twice"):
        shapes.register("square")(lambda: 0)


def test_parameters_are_the_keyword_arguments_and_describe_the_first_doc_line(shapes):
    assert list(shapes.parameters("square")) == ["side"]
    assert list(shapes.parameters("rectangle")) == ["width", "height"]  # no self, *args, **kwargs
    assert shapes.parameters("rectangle")["height"].default == 2.0
    assert shapes.describe("square") == "Area of a square."
    assert shapes.describe("rectangle") == ""
