"""Properties of the rule kinds seen in tenders (docs/sla.md §6.5, §6.6), over any rate, target,
share, score card and points lost that a contract file can hold."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from slamon.billing.deductions import ScoreItem, score_card_line, shortfall_line, shortfall_points
from slamon.model import (
    DeviceId,
    FaultHours,
    Kpi,
    KpiTarget,
    PayBand,
    PerPoint,
    PointCount,
    ScoreCard,
    ScoreCause,
)

rates = st.fractions(min_value=0, max_value=1, max_denominator=10**9)
targets = st.decimals(min_value=Decimal("0.000001"), max_value=1, places=6)
shares = st.one_of(
    st.decimals(min_value=0, max_value=1, places=6).map(Fraction),
    st.tuples(st.integers(0, 100), st.integers(1, 1000))
    .filter(lambda t: t[0] <= t[1])
    .map(lambda t: Fraction(*t)),
)
fees = st.decimals(min_value=0, max_value=10**9, places=2)
scores = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def pay_tables(draw: st.DrawFn) -> tuple[PayBand, ...]:
    """What the loader accepts: from the highest score down, each start below the one above, the last 0,
    no band paying more than the one above."""
    starts = sorted(
        draw(st.sets(st.decimals(min_value="0.01", max_value=100, places=2), max_size=6)), reverse=True
    )
    pays = sorted(
        draw(
            st.lists(
                st.decimals(min_value=0, max_value=1, places=6),
                min_size=len(starts) + 1,
                max_size=len(starts) + 1,
            )
        ),
        reverse=True,
    )
    return tuple(PayBand(at_least=a, pay=p) for a, p in zip([*starts, Decimal(0)], pays, strict=True))


@st.composite
def points_lost(draw: st.DrawFn) -> list[ScoreItem]:
    items = []
    for cause in ScoreCause:
        for _ in range(draw(st.integers(0, 5))):
            items.append(ScoreItem(cause, draw(scores), device=DeviceId("C1")))
    return items


CARD_ITEMS = {
    "fault_hours": FaultHours(over=timedelta(hours=8), points=Decimal(1)),
    "repair_overrun": Decimal(1),
    "missed_inspection": Decimal(1),
}


@given(rate=rates, target=targets)
def test_started_points_are_whole_points_or_one_more(rate: Fraction, target: Decimal) -> None:
    started = shortfall_points(rate, Fraction(target), PointCount.STARTED)
    whole = shortfall_points(rate, Fraction(target), PointCount.WHOLE)
    assert whole <= started <= whole + 1
    # started is 0 exactly when the rate reaches the target; whole also below one point short
    assert (started == 0) == (rate >= Fraction(target))
    assert (whole == 0) == (rate > Fraction(target) - Fraction(1, 100))
    shortfall = max(Fraction(0), (Fraction(target) - rate) * 100)
    assert (started, whole) == (math.ceil(shortfall), math.floor(shortfall))


@given(low=rates, high=rates, target=targets, count=st.sampled_from(PointCount))
def test_a_lower_rate_never_has_fewer_points(
    low: Fraction, high: Fraction, target: Decimal, count: PointCount
) -> None:
    low, high = min(low, high), max(low, high)
    assert shortfall_points(low, Fraction(target), count) >= shortfall_points(high, Fraction(target), count)


@given(
    rate=rates,
    target=targets,
    share=shares,
    count=st.sampled_from(PointCount),
    limit=st.none() | st.decimals(min_value="0.000001", max_value=1, places=6),
    fee_total=fees,
)
def test_a_shortfall_line_is_never_negative_nor_more_than_its_max(
    rate: Fraction,
    target: Decimal,
    share: Fraction,
    count: PointCount,
    limit: Decimal | None,
    fee_total: Decimal,
) -> None:
    terms = KpiTarget(target=target, deduct=None, per_point=PerPoint(deduct=share, points=count, limit=limit))
    line = shortfall_line(Kpi.ONLINE_RATE, rate, terms, fee_total)
    points = shortfall_points(rate, Fraction(target), count)
    if points == 0:
        assert line is None
        return
    assert line is not None
    assert line.points == points
    assert line.amount >= 0
    assert line.amount == line.amount.quantize(Decimal("0.01"))
    bound = points * share if limit is None else min(points * share, Fraction(limit))
    assert abs(Fraction(line.amount) - Fraction(fee_total) * bound) <= Fraction(1, 200)


@given(pay=pay_tables(), items=points_lost(), fee_total=fees)
def test_the_score_stays_in_0_to_100_and_the_line_in_0_to_the_fee_total(
    pay: tuple[PayBand, ...], items: list[ScoreItem], fee_total: Decimal
) -> None:
    card = ScoreCard(pay=pay, **CARD_ITEMS)
    line = score_card_line(card, items, fee_total)
    assert line.score is not None
    score = line.score.score
    assert 0 <= score <= 100
    assert score == max(Decimal(0), 100 - sum((i.points for i in items), Decimal(0)))
    # the band is the one the score reaches, and the one above it is out of reach
    band = line.score.band
    assert band.at_least <= score
    assert all(b.at_least > score for b in pay if b.at_least > band.at_least)
    assert 0 <= line.amount <= fee_total
    assert line.amount == line.amount.quantize(Decimal("0.01"))


@given(pay=pay_tables(), items=points_lost(), more=points_lost(), fee_total=fees)
def test_losing_more_points_never_pays_more(
    pay: tuple[PayBand, ...], items: list[ScoreItem], more: list[ScoreItem], fee_total: Decimal
) -> None:
    card = ScoreCard(pay=pay, **CARD_ITEMS)
    fewer = score_card_line(card, items, fee_total)
    worse = score_card_line(card, items + more, fee_total)
    assert fewer.score is not None
    assert worse.score is not None
    assert worse.score.score <= fewer.score.score
    assert worse.amount >= fewer.amount


@given(pay=pay_tables(), score=scores)
def test_every_score_has_exactly_one_band(pay: tuple[PayBand, ...], score: Decimal) -> None:
    """Bands the loader accepts cover 0 to 100 without gaps or overlaps."""
    containing = [
        b for i, b in enumerate(pay) if b.at_least <= score and (i == 0 or score < pay[i - 1].at_least)
    ]
    assert len(containing) == 1
