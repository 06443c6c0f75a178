"""`FetchedValue`: the wrapper a resolved value travels in, so it cannot leak by accident."""

from __future__ import annotations

__all__ = ["FetchedValue"]


class FetchedValue:
    """Holds a value from a customer vault; repr/str/format show a placeholder only.

    Call `reveal()` at the one place that needs the plain value (rendering to the user).
    Not picklable and not comparable, so it does not end up in caches or assertion diffs.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value; keep the result out of logs, errors and storage."""
        return self._value

    def __repr__(self) -> str:
        return "FetchedValue(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("FetchedValue cannot be pickled")

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return NotImplemented
