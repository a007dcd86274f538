"""Build ``area_codes.csv`` (Chinese landline area code → place) from phonenumbers' geocoder.

Run once when the phonenumbers data changes::

    python cleaning/resources/build_area_codes.py

Importing phonenumbers' geocoder costs seconds and much memory, so the pipeline reads this
small table instead. `place` is `cleaning.divisions.place_of_name` of the geocoder's Chinese
description: a 4-digit city code, or a 2-digit province code when the area code spans cities.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cleaning.divisions import place_of_name

_FIXED = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def main() -> None:
    """Write cleaning/resources/area_codes.csv."""
    codes = ["10", *(f"2{i}" for i in range(10)), *(str(c) for c in range(310, 1000))]
    rows = []
    for area in codes:
        if area in ("400", "800"):
            continue
        for local in ("62345678", "6234567"):  # 8- or 7-digit local numbers
            number = phonenumbers.parse(f"+86{area}{local}")
            if phonenumbers.is_valid_number(number):
                if phonenumbers.number_type(number) in _FIXED:
                    description = geocoder.description_for_number(number, "zh")
                    place = place_of_name(description)
                    if place:
                        rows.append((area, place, description))
                break
    out = Path(__file__).with_name("area_codes.csv")
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["area_code", "place", "description"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} area codes to {out}")


if __name__ == "__main__":
    main()
