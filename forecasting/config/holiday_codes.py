"""Holiday calendar codes (`source.holidays`): a country's ISO 3166 code, optionally with a
subdivision ("US", "US-CA", "DE-BY"), checked against the `holidays` package's calendars."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def split_code(code: str) -> tuple[str, str | None]:
    """("US", "CA") for "US-CA", ("US", None) for "US"."""
    country, _, subdivision = code.partition("-")
    return country, subdivision or None


def check_codes(codes: list[str]) -> list[str]:
    """`codes` upper-cased, or a ValueError naming the first one the `holidays` package has no calendar for."""
    import holidays  # lazy: holidays (its calendars are read only when source.holidays is set)

    supported = holidays.list_supported_countries()
    checked = []
    for code in codes:
        country, subdivision = split_code(str(code).strip().upper())
        if country not in supported:
            raise ValueError(f"unknown country code {code!r} (ISO 3166 alpha-2 codes such as 'US', 'DE', 'GB', optionally with a subdivision: 'US-CA')")
        if subdivision is not None and subdivision not in supported[country]:
            raise ValueError(f"unknown subdivision {code!r}: {country} has {', '.join(supported[country]) or 'none'}")
        checked.append(country if subdivision is None else f"{country}-{subdivision}")
    if len(set(checked)) != len(checked):
        raise ValueError("holiday calendars repeat")
    return checked


HolidayCodes = Annotated[list[str], AfterValidator(check_codes)]
