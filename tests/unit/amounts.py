"""Random amounts for the property tests: whole cents as the two-place Decimals the money rules use."""

from __future__ import annotations

from decimal import Decimal


def from_cents(c: int) -> Decimal:
    """The two-place Decimal for an integer number of cents (12345 -> Decimal("123.45"))."""
    return Decimal(c).scaleb(-2)
