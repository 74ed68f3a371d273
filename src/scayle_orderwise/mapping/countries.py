"""ISO 3166-1 alpha-3 → alpha-2 country codes (SCAYLE addresses use alpha-3, OrderWise alpha-2)."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import UnknownCountryError

__all__ = ["ALPHA3_TO_ALPHA2", "COUNTRY_NAMES", "alpha2"]

_TABLE = """
AUT AT Austria|BEL BE Belgium|BGR BG Bulgaria|HRV HR Croatia|CYP CY Cyprus|CZE CZ Czechia
DNK DK Denmark|EST EE Estonia|FIN FI Finland|FRA FR France|DEU DE Germany|GRC GR Greece
HUN HU Hungary|IRL IE Ireland|ITA IT Italy|LVA LV Latvia|LTU LT Lithuania|LUX LU Luxembourg
MLT MT Malta|NLD NL Netherlands|POL PL Poland|PRT PT Portugal|ROU RO Romania|SVK SK Slovakia
SVN SI Slovenia|ESP ES Spain|SWE SE Sweden|ISL IS Iceland|LIE LI Liechtenstein|NOR NO Norway
CHE CH Switzerland|GBR GB United Kingdom|GGY GG Guernsey|JEY JE Jersey|IMN IM Isle of Man
GIB GI Gibraltar|MCO MC Monaco|SMR SM San Marino|VAT VA Holy See|AND AD Andorra|FRO FO Faroe Islands
GRL GL Greenland|ALB AL Albania|BIH BA Bosnia and Herzegovina|MNE ME Montenegro|MKD MK North Macedonia
SRB RS Serbia|MDA MD Moldova|UKR UA Ukraine|TUR TR Turkey|GEO GE Georgia|ARM AM Armenia
USA US United States|CAN CA Canada|MEX MX Mexico|BRA BR Brazil|ARG AR Argentina|CHL CL Chile
AUS AU Australia|NZL NZ New Zealand|JPN JP Japan|CHN CN China|HKG HK Hong Kong|TWN TW Taiwan
KOR KR South Korea|SGP SG Singapore|MYS MY Malaysia|THA TH Thailand|IND IN India|IDN ID Indonesia
PHL PH Philippines|VNM VN Vietnam|ARE AE United Arab Emirates|SAU SA Saudi Arabia|KWT KW Kuwait
BHR BH Bahrain|QAT QA Qatar|OMN OM Oman|JOR JO Jordan|ISR IL Israel|EGY EG Egypt|MAR MA Morocco
ZAF ZA South Africa|NGA NG Nigeria|KEN KE Kenya
"""

ALPHA3_TO_ALPHA2: Mapping[str, str] = {
    entry.split(" ", 2)[0]: entry.split(" ", 2)[1]
    for line in _TABLE.strip().splitlines()
    for entry in line.split("|")
}
"""Alpha-3 → alpha-2 for the EU, EEA, UK and Crown Dependencies, CH, US and common trade partners."""

COUNTRY_NAMES: Mapping[str, str] = {
    entry.split(" ", 2)[1]: entry.split(" ", 2)[2]
    for line in _TABLE.strip().splitlines()
    for entry in line.split("|")
}
"""Alpha-2 → English short name (for OrderWise's ``country`` text)."""

_ALPHA2 = frozenset(ALPHA3_TO_ALPHA2.values())


def alpha2(code: str, extra: Mapping[str, str] | None = None) -> str:
    """The alpha-2 code of an alpha-3 (or already alpha-2) country code; raises ``UnknownCountryError``."""
    value = code.strip().upper()
    if extra and value in extra:
        return extra[value]
    found = ALPHA3_TO_ALPHA2.get(value)
    if found is not None:
        return found
    if len(value) == 2 and (value in _ALPHA2 or (extra and value in extra.values())):
        return value
    raise UnknownCountryError(code)
