"""The matcher signature decides whether a stored run's params and pairs may be reused."""

from __future__ import annotations

import json

from dedupe import defaults
from dedupe.settings import MATCHER_VERSION, MatchSettings, matcher_signature


def test_signature_covers_settings_levels_and_rules(monkeypatch) -> None:
    base = matcher_signature(MatchSettings())
    data = json.loads(base)
    assert data["version"] == MATCHER_VERSION
    assert "exact_mobile" in json.dumps(data["comparisons"]["phone"])
    assert "name_neighbours" in data["blocking_rules"]
    assert matcher_signature(MatchSettings(match_threshold=0.9)) != base
    # a change to a built-in comparison's levels (same settings) changes the signature too
    phone = defaults.BUILTIN_COMPARISONS["phone"]
    monkeypatch.setitem(
        defaults.BUILTIN_COMPARISONS, "phone", phone.model_copy(update={"levels": phone.levels[1:]})
    )
    assert matcher_signature(MatchSettings()) != base
