"""Property tests: the rating and rounding macros, run through DuckDB, over the supported
ranges (README "Supported ranges", DECISIONLOG D33), against an exact Python reference.

The macros are rendered from the project's own macro files (plain Jinja, as dbt would), so
what is tested is the SQL the models run. The reference below is written independently
with `decimal.Decimal` at 80 digits: exact products, then half away from zero once.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

import duckdb
import jinja2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billing.settings import PROJECT_DIR

MACRO_FILES = ("money.sql", "quantity.sql", "rating.sql")
NANO = Decimal("0.000000001")
LIMIT = Decimal(10) ** 15


@pytest.fixture(scope="module")
def macros():
    """The project's macros as callables returning SQL text."""
    source = "\n".join((PROJECT_DIR / "macros" / name).read_text() for name in MACRO_FILES)
    return jinja2.Environment().from_string(source).module


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def literal(value: Decimal, scale: int = 9) -> str:
    return f"cast('{value}' as decimal(38, {scale}))"


def decimals(max_value: Decimal, places: int, min_value: Decimal = Decimal(0)):
    """Decimals in [min_value, max_value) with exactly `places` decimals at most."""
    unit = Decimal(1).scaleb(-places)
    low, high = int(min_value / unit), int(max_value / unit) - 1
    return st.integers(low, high).map(lambda n: Decimal(n) * unit)


quantities = decimals(LIMIT, 9)
unit_prices = decimals(Decimal(10) ** 9, 9)
multipliers = decimals(Decimal(100), 4)
minor_units = st.sampled_from([0, 2, 3, 4])


def reference_line(quantity: Decimal, price: Decimal, multiplier: Decimal, units: int) -> Decimal:
    """q x price x multiplier, exact, rounded half away from zero to the minor units."""
    with localcontext() as context:
        context.prec = 80
        exact = quantity * price * multiplier
        return exact.quantize(Decimal(1).scaleb(-units), rounding=ROUND_HALF_UP)


def sql_line(macros, quantity, price, multiplier, units) -> str:
    amount = macros.apply_multiplier(
        macros.rate_standard(literal(quantity), literal(price)), literal(multiplier)
    )
    return str(macros.round_money(amount, str(units)))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quantities, unit_prices, multipliers, minor_units)
def test_standard_lines_are_exact_inside_the_ranges(
    macros, con, quantity, price, multiplier, units
):
    with localcontext() as context:
        context.prec = 80
        # The line before and after the multiplier is a line amount (README, Supported ranges).
        assume(quantity * price * max(multiplier, 1) < LIMIT)
    guard = macros.is_beyond_line_amount(
        literal(quantity), literal(price), "0", literal(multiplier)
    )
    flagged, amount = con.execute(
        f"select {guard}, {sql_line(macros, quantity, price, multiplier, units)}"
    ).fetchone()
    expected = reference_line(quantity, price, multiplier, units)
    # The double estimate may flag a line within a hair of 10^15; never one clearly inside.
    assert not flagged or expected > LIMIT * Decimal("0.999999")
    assert amount == expected


def test_a_zero_multiplier_does_not_bring_a_product_beyond_the_range_back_into_it(macros, con):
    # Found by the property test above: 999,997,000,299,988 units at 999,999,998.66 with a
    # multiplier of 0 is a line of 0, but the exact product (about 10^24 at scale 18)
    # overflowed DuckDB's decimal(38) and stopped the build for every customer. It is
    # flagged, so only its customer's invoices are held.
    quantity = literal(Decimal("999997000299988.065883899"))
    price = literal(Decimal("999999998.657822716"))
    flags = [
        con.execute(
            f"select {macros.is_beyond_line_amount(quantity, price, '0', literal(m))}"
        ).fetchone()[0]
        for m in (Decimal(0), Decimal("0.0001"), Decimal(1))
    ]
    assert flags == [True, True, True]
    # Inside the range before the multiplier, a small multiplier keeps the line priced.
    inside = macros.is_beyond_line_amount(
        literal(Decimal("999999")), literal(Decimal("999999999")), "0", literal(Decimal(0))
    )
    assert con.execute(f"select {inside}").fetchone()[0] is False


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    decimals(LIMIT, 9, Decimal(10) ** 10),
    decimals(Decimal(10) ** 9, 9, Decimal(10) ** 4),
    decimals(Decimal(100), 4, Decimal(1)),
)
def test_lines_beyond_the_range_are_flagged_never_overflow(
    macros, con, quantity, price, multiplier
):
    with localcontext() as context:
        context.prec = 80
        assume(quantity * price * multiplier >= LIMIT * Decimal("1.000001"))
    guard = macros.is_beyond_line_amount(
        literal(quantity), literal(price), "0", literal(multiplier)
    )
    # The model takes the exact product only when the guard lets it (int_charges_rated).
    guarded = f"case when not {guard} then {sql_line(macros, quantity, price, multiplier, 2)} end"
    assert con.execute(f"select {guard}, {guarded}").fetchone() == (True, None)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantities,
    st.sampled_from([Decimal(0), Decimal(1000), Decimal(10) ** 9]),
    decimals(Decimal(10) ** 9, 9, NANO),
    decimals(Decimal(10) ** 15, 9),
    multipliers,
)
def test_graduated_tiers_are_exact(macros, con, quantity, lower, price, flat_fee, multiplier):
    """One graduated tier: units inside it x price + its flat fee, times the multiplier."""
    up_to = lower + Decimal(10) ** 12
    units_in_tier = max(min(quantity, up_to) - lower, Decimal(0))
    with localcontext() as context:
        context.prec = 80
        exact = (units_in_tier * price + flat_fee) * multiplier
        assume(exact < LIMIT)
    amount = macros.apply_multiplier(
        macros.rate_graduated(
            literal(quantity), literal(lower), literal(up_to), literal(price), literal(flat_fee)
        ),
        literal(multiplier),
    )
    result = con.execute(f"select {macros.round_money(amount, '2')}").fetchone()[0]
    with localcontext() as context:
        context.prec = 80
        reached = lower == 0 or quantity > lower
        exact = (units_in_tier * price + (flat_fee if reached else 0)) * multiplier
        assert result == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


ROUNDINGS = {"up": ROUND_CEILING, "down": ROUND_FLOOR, "half_up": ROUND_HALF_UP}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantities,
    decimals(Decimal(10) ** 9, 9, NANO),
    st.integers(-9, 9),
    st.sampled_from(["up", "down", "half_up", "none"]),
)
def test_quantity_transform_is_exact(macros, con, aggregate, divisor, precision, rounding):
    sql = macros.transform_quantity(
        literal(aggregate), literal(divisor), str(precision), f"'{rounding}'"
    )
    result = con.execute(f"select {sql}").fetchone()[0]
    with localcontext() as context:
        context.prec = 80
        ratio = aggregate / divisor
        if rounding == "none":
            expected = ratio.quantize(NANO, rounding=ROUND_HALF_UP)
        else:
            step = Decimal(1).scaleb(-precision)
            expected = (ratio / step).quantize(Decimal(1), rounding=ROUNDINGS[rounding]) * step
    assert result == expected
