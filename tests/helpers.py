"""Small helpers shared by the tests."""

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def evolve(model: M, **changes: Any) -> M:
    """A copy of a frozen settings model with some fields changed (validated values only)."""
    return model.model_copy(update=changes)
