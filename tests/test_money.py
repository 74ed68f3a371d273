"""Money, rounding, allocation and VAT splits: properties of money-policy.md §4.1 and §4.2.5, and §5 examples."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scayle_orderwise.errors import CurrencyMismatchError
from scayle_orderwise.money import (
    CURRENCY_EXPONENTS,
    Money,
    allocate,
    exponent,
    round_half_up,
    split_gross,
    split_net,
)

RATES = [
    Decimal("0.2"),
    Decimal("0.05"),
    Decimal("0"),
    Decimal("0.19"),
    Decimal("0.07"),
    Decimal("0.21"),
]

weights_and_keys = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**9)),
    min_size=1,
    max_size=12,
    unique_by=lambda wk: wk[1],
).filter(lambda pairs: sum(w for w, _ in pairs) > 0)


class TestMoney:
    def test_arithmetic_and_comparison(self) -> None:
        a, b = Money(1999, "GBP"), Money(1, "gbp")
        assert a + b == Money(2000, "GBP")
        assert a - b == Money(1998, "GBP")
        assert -a == Money(-1999, "GBP")
        assert b < a and a >= b
        assert 3 * b == Money(3, "GBP")

    def test_mixing_currencies_raises(self) -> None:
        with pytest.raises(CurrencyMismatchError):
            _ = Money(1, "GBP") + Money(1, "EUR")
        with pytest.raises(CurrencyMismatchError):
            _ = Money(1, "GBP") < Money(1, "EUR")

    @pytest.mark.parametrize("bad", [1.5, Decimal("1"), "1", True])
    def test_amount_must_be_int(self, bad: object) -> None:
        with pytest.raises(TypeError):
            Money(bad, "GBP")  # type: ignore[arg-type]

    def test_unknown_currency(self) -> None:
        with pytest.raises(ValueError, match="ZZZ"):
            Money(1, "ZZZ")

    @pytest.mark.parametrize(
        ("value", "currency", "minor"),
        [
            ("19.99", "GBP", 1999),
            ("1500", "JPY", 1500),
            ("1.234", "KWD", 1234),
            (Decimal("-0.05"), "EUR", -5),
        ],
    )
    def test_from_decimal_round_trip(self, value: str, currency: str, minor: int) -> None:
        money = Money.from_decimal(value, currency)
        assert money.amount == minor
        assert money.to_decimal() == Decimal(value)

    def test_from_decimal_refuses_sub_minor_digits_and_floats(self) -> None:
        with pytest.raises(ValueError, match="decimals"):
            Money.from_decimal("1.999", "GBP")
        with pytest.raises(TypeError):
            Money.from_decimal(1.99, "GBP")  # type: ignore[arg-type]

    def test_exponent_table(self) -> None:
        assert (exponent("GBP"), exponent("JPY"), exponent("KWD"), exponent("BHD")) == (2, 0, 3, 3)
        assert exponent("CLF") == 4
        assert len(CURRENCY_EXPONENTS) > 150


class TestRoundHalfUp:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("0.5", 1),
            ("1.5", 2),
            ("2.5", 3),
            ("-2.5", -3),
            ("2.4999", 2),
            ("-0.4", 0),
            (Fraction(999, 6), 167),
        ],
    )
    def test_ties_away_from_zero(self, value: str | Fraction, expected: int) -> None:
        assert round_half_up(value) == expected

    def test_refuses_float(self) -> None:
        with pytest.raises(TypeError):
            round_half_up(2.5)  # type: ignore[arg-type]

    @given(st.fractions())
    def test_symmetric_and_close(self, value: Fraction) -> None:
        rounded = round_half_up(value)
        assert round_half_up(-value) == -rounded
        assert abs(rounded - value) <= Fraction(1, 2)


class TestAllocateProperties:
    @given(st.integers(min_value=-(10**9), max_value=10**9), weights_and_keys)
    def test_conservation_closeness_zero_weight(
        self, total: int, pairs: list[tuple[int, int]]
    ) -> None:
        weights = [w for w, _ in pairs]
        keys = [k for _, k in pairs]
        result = allocate(total, weights, keys)
        whole = sum(weights)
        assert sum(result) == total
        for share, w in zip(result, weights, strict=True):
            assert abs(share - Fraction(total * w, whole)) < 1
            if w == 0:
                assert share == 0

    @given(st.integers(min_value=0, max_value=10**9), weights_and_keys)
    def test_no_negatives_no_overflow(self, total: int, pairs: list[tuple[int, int]]) -> None:
        weights = [w for w, _ in pairs]
        result = allocate(total, weights, [k for _, k in pairs])
        assert all(share >= 0 for share in result)
        if total <= sum(weights):
            assert all(share <= w for share, w in zip(result, weights, strict=True))

    @given(st.integers(min_value=-(10**9), max_value=10**9), weights_and_keys)
    def test_sign_symmetry(self, total: int, pairs: list[tuple[int, int]]) -> None:
        weights, keys = [w for w, _ in pairs], [k for _, k in pairs]
        assert allocate(-total, weights, keys) == [-s for s in allocate(total, weights, keys)]

    @given(st.integers(min_value=-(10**6), max_value=10**6), weights_and_keys, st.randoms())
    def test_order_independence(
        self, total: int, pairs: list[tuple[int, int]], rnd: object
    ) -> None:
        shuffled = list(pairs)
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        by_key = dict(
            zip(
                [k for _, k in pairs],
                allocate(total, [w for w, _ in pairs], [k for _, k in pairs]),
                strict=True,
            )
        )
        again = allocate(total, [w for w, _ in shuffled], [k for _, k in shuffled])
        assert [by_key[k] for _, k in shuffled] == again

    @given(st.integers(min_value=-(10**6), max_value=10**6), weights_and_keys)
    def test_deterministic(self, total: int, pairs: list[tuple[int, int]]) -> None:
        weights, keys = [w for w, _ in pairs], [k for _, k in pairs]
        assert allocate(total, weights, keys) == allocate(total, list(weights), list(keys))


class TestAllocateExamples:
    def test_e01_tie_goes_to_smallest_key(self) -> None:
        assert allocate(1000, [999, 999, 999], ["A", "B", "C"]) == [334, 333, 333]
        assert allocate(1000, [999, 999, 999], ["C", "A", "B"]) == [333, 334, 333]

    def test_e13_voucher_and_shipping(self) -> None:
        assert allocate(1500, [8999, 12000]) == [643, 857]
        assert allocate(599, [11143, 8356], ["R", "S"]) == [342, 257]

    def test_e25b_alabama_paradox_is_documented_behaviour(self) -> None:
        assert allocate(10, [6, 6, 2]) == [4, 4, 2]
        assert allocate(11, [6, 6, 2]) == [5, 5, 1]

    def test_all_zero_weights(self) -> None:
        assert allocate(0, [0, 0]) == [0, 0]
        with pytest.raises(ValueError, match="all zero"):
            allocate(5, [0, 0])

    def test_bad_inputs(self) -> None:
        with pytest.raises(ValueError):
            allocate(5, [1, -1])
        with pytest.raises(ValueError):
            allocate(5, [1, 1], ["a"])
        with pytest.raises(TypeError):
            allocate(5, [1.5, 1])  # type: ignore[list-item]


class TestVatSplits:
    @pytest.mark.parametrize(
        ("gross", "rate", "net", "vat"),
        [
            (999, "0.2", 832, 167),  # E03 tie: half-up on the VAT
            (665, "0.2", 554, 111),  # E01
            (2400, "0.20", 2000, 400),  # E04
            (256, Decimal("0.2"), 213, 43),  # E04 shipping S part
            (495, Fraction(1, 5), 412, 83),  # E10 shipping tie
            (11143, "0.05", 10612, 531),  # E13
            (342, "0.05", 326, 16),
            (1250, "0", 1250, 0),
            (1, "0.2", 1, 0),  # E07: a 1p line carries no VAT
        ],
    )
    def test_worked_examples(self, gross: int, rate: object, net: int, vat: int) -> None:
        assert split_gross(gross, rate) == (net, vat)  # type: ignore[arg-type]

    def test_rate_float_refused(self) -> None:
        with pytest.raises(TypeError):
            split_gross(100, 0.2)  # type: ignore[arg-type]

    @settings(max_examples=300)
    @given(st.integers(min_value=-(10**8), max_value=10**8), st.sampled_from(RATES))
    def test_split_gross_bounds(self, gross: int, rate: Decimal) -> None:
        net, vat = split_gross(gross, rate)
        r = Fraction(rate)
        assert net + vat == gross
        assert abs(vat - r * gross / (1 + r)) <= Fraction(1, 2)
        assert abs(vat - r * net) <= (1 + r) / 2
        assert split_gross(-gross, rate) == (-net, -vat)

    @settings(max_examples=300)
    @given(st.integers(min_value=-(10**8), max_value=10**8), st.sampled_from(RATES))
    def test_split_net_bounds(self, net: int, rate: Decimal) -> None:
        gross, vat = split_net(net, rate)
        assert gross == net + vat
        assert abs(vat - Fraction(rate) * net) <= Fraction(1, 2)
