"""Declared comparisons and blocking rules: validation naming the key, the level library, keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from dedupe import MatchSettings
from dedupe.comparisons import PairContext
from dedupe.defaults import BUILTIN_BLOCKING_RULES, BUILTIN_COMPARISONS, DEFAULT_COMPARISONS
from dedupe.levels import builtin_comparisons, comparisons_for, compile_comparison, rules_for
from dedupe.prepare import prepare_records
from dedupe.specs import ComparisonSpec

GIVEN = {"name": "given_name", "field": "given_name", "tf_adjustment": True,
         "levels": ["exact", {"type": "jaro_winkler", "threshold": 0.9}]}  # fmt: skip


def test_defaults_are_the_builtin_set_in_declared_form() -> None:
    settings = MatchSettings()
    assert [c.name for c in comparisons_for(settings)] == list(DEFAULT_COMPARISONS)
    assert set(BUILTIN_COMPARISONS) - set(DEFAULT_COMPARISONS) == {"location"}
    assert [r.name for r in rules_for(settings)] == list(BUILTIN_BLOCKING_RULES)
    labels = {c.name: c.labels for c in comparisons_for(settings)}
    assert labels["name_key"] == (
        "null",
        "exact",
        "exact_sole_holder",
        "exact_org_elsewhere_too",
        "exact_org",
        "same_pinyin",
        "brand_sound",
        "jw>=0.92",
        "jw>=0.80",
        "pinyin_reordered",
        "prefix",
        "person_is_contact",
        "masked_compatible",
        "else",
    )
    assert builtin_comparisons()["location"].labels == (
        "null",
        "city_district",
        "city",
        "province",
        "else",
    )
    rules = {r.name: r for r in rules_for(settings)}
    assert rules["name_prefix_city"].key == "first(name_key,2)|city"
    assert rules["contact_city"].determines == ("contact_name", "location")


def test_issue16_model_is_declared() -> None:
    """The #16 declarations survive compilation: corroboration, sufficiency, sorted
    neighbourhoods with filters and caps, opt-out of EM training."""
    comps = {c.name: c for c in comparisons_for(MatchSettings())}
    name = comps["name_key"]
    alone = {lv.label: lv.alone for lv in name.levels}
    assert not alone["jw>=0.92"] and not alone["brand_sound"] and alone["exact_org"]
    assert name.tf_without == "is_org" and name.tf_column == "name_key"
    phone = {lv.label: lv.sufficient for lv in comps["phone"].levels}
    assert phone["exact_mobile"] and not phone["exact"]
    assert {c for c, comp in comps.items() if comp.identity} == {
        "phone",
        "email",
        "credit_code",
        "contact_name",
        "address",
        "id_number",
    }
    assert comps["place"].null_columns == ("place_province",)
    rules = {r.name: r for r in rules_for(MatchSettings())}
    sn = rules["name_neighbours_reversed"]
    assert (sn.key, sn.order, sn.window, sn.max_block_size, sn.trains) == (
        "record_kind",
        "name_reversed",
        3,
        2,
        False,
    )
    assert sn.min_similarity == ("name_key", "jaro_winkler", 0.8)
    assert rules["phone_neighbours"].min_similarity == ("phone", "ratio", 0.92)
    assert rules["brand_province"].trains and rules["brand_province"].window == 4


def test_declared_sorted_neighbourhood_and_flags_level() -> None:
    settings = MatchSettings(
        comparisons=["name_key", {"name": "mob", "field": "phone", "corroborates": True,
                                  "levels": [{"type": "flags", "if_either": ["phone_mobile"],
                                              "unless_both": ["phone_mobile"]}]}],
        blocking_rules=[{"name": "sn", "keys": ["record_kind"], "max_block_size": 2,
                         "window": 2, "order": "phone", "trains": False,
                         "min_similarity": {"field": "phone", "scorer": "ratio",
                                            "threshold": 0.9}}],
    )  # fmt: skip
    (rule,) = rules_for(settings)
    assert (rule.order, rule.window, rule.trains) == ("phone", 2, False)
    assert comparisons_for(settings)[1].identity
    with pytest.raises(ValidationError, match="needs a condition"):
        MatchSettings(comparisons=[{"name": "x", "field": "phone", "levels": ["flags"]}])


def test_builtin_names_and_declared_specs_mix() -> None:
    settings = MatchSettings(
        comparisons=["name_key", "phone", GIVEN],
        blocking_rules=["phone", {"name": "given_city", "keys": ["given_name", "city"]}],
    )
    rules = {r.name: r for r in rules_for(settings)}
    assert rules["given_city"].key == "given_name|city"
    assert rules["given_city"].determines == ("given_name",)  # the plain-key comparisons


BAD = [
    ("unknown_builtin", {"comparisons": ["name_key", "nmae"]}, "unknown comparison(s) ['nmae']"),
    ("unknown_level", {"comparisons": [{**GIVEN, "levels": ["exakt"]}]}, "exakt"),
    ("threshold_missing", {"comparisons": [{**GIVEN, "levels": [{"type": "jaro_winkler"}]}]},
     "needs a threshold"),
    ("threshold_range", {"comparisons": [{**GIVEN, "levels": [
        {"type": "jaro", "threshold": 1.5}]}]}, "less than or equal to 1"),
    ("distance_missing", {"comparisons": [{**GIVEN, "levels": [{"type": "levenshtein"}]}]},
     "needs max_distance"),
    ("duplicate_labels", {"comparisons": [{**GIVEN, "levels": ["exact", "exact"]}]},
     "level labels repeat"),
    ("repeated_name", {"comparisons": ["phone", {**GIVEN, "name": "phone"}]}, "used twice"),
    ("bad_key", {"blocking_rules": [{"name": "x", "keys": ["substr(name_key)"]}]},
     "use a field or first(f, n)"),
    ("bad_first", {"blocking_rules": [{"name": "x", "keys": ["first(name_key)"]}]},
     "first(field, n)"),
    ("stray_determines", {"blocking_rules": [{"name": "x", "keys": ["phone"],
                                               "determines": ["fone"]}]}, "['fone']"),
    ("unknown_rule", {"blocking_rules": ["phone", "fone"]}, "unknown rule(s) ['fone']"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_declarations_are_rejected_with_the_key(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        MatchSettings.model_validate(settings)
    assert message in str(error.value)


def test_project_config_error_names_file_and_key(tmp_path: Path) -> None:
    from pipelines.settings import ConfigError, load_config

    path = tmp_path / "archive.yml"
    path.write_text(
        "matching:\n  comparisons:\n    - name: dob\n      field: birth_date\n"
        "      levels: [{type: date_distance}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "matching.comparisons.0" in str(error.value)
    assert "needs max_days" in str(error.value)


def _levels(spec: dict, rows: list[dict[str, object]]) -> list[str]:
    """Labels of the comparison for pairs (0, 1), (2, 3) … of `rows`."""
    frame = pd.DataFrame(rows)
    frame["record_key"] = [f"r:{i:03d}" for i in range(len(rows))]
    comp = compile_comparison(ComparisonSpec.model_validate(spec))
    settings = MatchSettings(comparisons=[spec])
    prepared = prepare_records(frame, settings)
    left = np.arange(0, len(rows), 2)
    ctx = PairContext(prepared, left, left + 1)
    return [comp.labels[int(c)] for c in comp.evaluate(ctx)]


LEVEL_CASES = [
    # characters, not bytes: one CJK substitution is one edit
    ({"name": "n", "field": "family_name", "levels": [{"type": "levenshtein", "max_distance": 1}]},
     [("欧阳", "欧杨", "lev<=1"), ("欧阳", "司马", "else"), ("smith", "smyth", "lev<=1")]),
    ({"name": "n", "field": "family_name", "levels": [
        {"type": "damerau_levenshtein", "max_distance": 1}]},
     [("smith", "msith", "dl<=1"), ("smith", "mtihs", "else")]),
    ({"name": "d", "field": "birth_date", "levels": [
        "exact", {"type": "date_distance", "max_days": 31}]},
     [("1990-01-05", "1990-01-05", "exact"), ("1990-01-05", "1990-02-01", "days<=31"),
      ("1990-01-05", "1991-01-05", "else"), ("1990-01-05", None, "null")]),
    ({"name": "a", "field": "amount", "levels": [
        {"type": "numeric_distance", "max_abs": 1}, {"type": "numeric_distance", "max_rel": 0.1}]},
     [("100", "100.5", "abs<=1"), ("100", "109", "rel<=0.1"), ("100", "200", "else")]),
    ({"name": "p", "field": "family_name", "levels": ["pinyin"]},
     [("张", "章", "pinyin"), ("张", "王", "else")]),
    ({"name": "i", "field": "id_number", "levels": [
        {"type": "id_number", "mode": "exact"}, {"type": "id_number", "mode": "typo"}]},
     [("11010519491231002X", "11010519491231002X", "id_exact"),
      ("11010519491231002X", "11010519491231012X", "id_typo"),
      ("11010519491231002X", "1101051949123100", "else")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "cases"), LEVEL_CASES, ids=[c[0]["levels"].__repr__()[:40] for c in LEVEL_CASES]
)
def test_level_library(spec: dict, cases: list[tuple[object, object, str]]) -> None:
    rows = []
    for left, right, _ in cases:
        rows += [{spec["field"]: left}, {spec["field"]: right}]
    assert _levels(spec, rows) == [c[2] for c in cases]


def test_attributes_are_compared_by_name_and_blocked_by_expression() -> None:
    settings = MatchSettings(
        comparisons=[{"name": "wechat", "field": "wechat_id", "levels": ["exact"]}],
        blocking_rules=[{"name": "swapped", "keys": ["sorted(given_name, family_name)"]},
                        {"name": "wx", "keys": ["first(wechat_id, 3)"]}],
    )  # fmt: skip
    records = pd.DataFrame({
        "record_key": ["a:1", "a:2", "a:3"],
        "given_name": ["Smith", "john", None], "family_name": ["John", "Smith", "x"],
        "attributes": ['{"wechat_id": "ZW_88"}', '{"wechat_id": "zw_88"}', "{}"],
    })  # fmt: skip
    prepared = prepare_records(records, settings)
    assert prepared["wechat_id"].tolist() == ["zw_88", "zw_88", None]
    assert prepared["sorted(given_name,family_name)"].tolist() == ["john|smith", "john|smith", None]
    assert prepared["first(wechat_id,3)"].tolist() == ["zw_", "zw_", None]


def test_builtin_comparisons_are_compiled_once() -> None:
    assert builtin_comparisons() is builtin_comparisons()


def test_fields_nobody_provides_are_reported_with_their_key() -> None:
    from cleaning.pipeline import RECORD_COLUMNS
    from dedupe.levels import unknown_fields

    settings = MatchSettings(
        comparisons=["phone", {"name": "wx", "field": "wechat_id", "levels": ["exact"]}],
        blocking_rules=["phone", {"name": "dob", "keys": ["year(birth_date)", "postcode"]}],
    )
    problems = unknown_fields(settings, set(RECORD_COLUMNS))
    assert problems == [
        "matching.comparisons.1 (wx): field 'wechat_id' is neither a clean column nor an "
        "attribute any source declares (sources.yml `attributes:`)",
        "matching.blocking_rules.1 (dob): key 'postcode' reads 'postcode', neither a clean "
        "column nor a declared attribute",
    ]
    assert unknown_fields(settings, {*RECORD_COLUMNS, "wechat_id", "postcode"}) == []


@pytest.mark.parametrize("bench", ["febrl3", "febrl4"])
def test_febrl_configurations_load_and_name_only_known_fields(bench: str) -> None:
    from cleaning.pipeline import RECORD_COLUMNS
    from dedupe.levels import unknown_fields
    from pipelines.settings import load_config
    from sources import load_sources_config

    folder = Path(__file__).parents[2] / "benchmarks" / "configs"
    config = load_config(folder / f"{bench}.yml")
    sources = load_sources_config(config.resolve(config.sources_file), check_files=False)
    attributes = {a for s in sources.sources for a in s.attribute_names()}
    assert {"soc_sec_id", "postcode", "date_of_birth"} <= attributes
    assert unknown_fields(config.matching, {*RECORD_COLUMNS, *attributes}) == []
    assert len(config.matching.comparisons) == 10


def test_level_conditions_on_flags_and_nulls() -> None:
    spec = {"name": "n", "field": "name_key", "levels": [
        {"type": "exact", "unless_both": ["vip"], "label": "exact_person"},
        {"type": "exact", "if_both": ["vip"], "if_either": ["multi_site"],
         "if_null": ["city"], "label": "exact_org_elsewhere"},
        {"type": "exact", "label": "exact_org"},
    ]}  # fmt: skip
    rows = [
        {"name_key": "a", "vip": False, "multi_site": False, "city": "x"},
        {"name_key": "a", "vip": True, "multi_site": False, "city": "x"},
        {"name_key": "b", "vip": True, "multi_site": True, "city": None},
        {"name_key": "b", "vip": True, "multi_site": False, "city": "x"},
        {"name_key": "c", "vip": True, "multi_site": False, "city": "x"},
        {"name_key": "c", "vip": True, "multi_site": False, "city": "x"},
    ]
    assert _levels(spec, rows) == ["exact_person", "exact_org_elsewhere", "exact_org"]


def test_name_and_place_conflicts_follow_the_runs_comparisons() -> None:
    """name_conflict / place_conflict read the run's `name_key` / `place` comparisons: a
    declared person set without them (FEBRL's) has no such conflicts."""
    from dedupe.rules import hard_rule_reasons

    rows = [
        {"name_key": "张伟", "customer_type": "individual", "city": "北京市"},
        {"name_key": "李娜", "customer_type": "individual", "city": "北京市"},
    ]
    frame = pd.DataFrame(rows)
    frame["record_key"] = ["r:1", "r:2"]
    ctx = PairContext(prepare_records(frame), np.array([0]), np.array([1]))
    assert hard_rule_reasons(ctx, False).tolist() == ["name_conflict"]
    names = {"name_key": builtin_comparisons()["name_key"]}
    assert hard_rule_reasons(ctx, False, comparisons=names).tolist() == ["name_conflict"]
    declared = {"given_name": compile_comparison(ComparisonSpec.model_validate(GIVEN))}
    assert hard_rule_reasons(ctx, False, comparisons=declared).tolist() == [None]
    without = ("branch_conflict", "credit_code_conflict")
    assert hard_rule_reasons(ctx, False, rules=without).tolist() == [None]


def test_builtin_set_written_out_as_yaml_mappings_links_identically(synthetic, linked) -> None:
    """One code path: the built-in set declared in full (as an archive.yml would, every
    comparison and rule a mapping) gives the same model, pairs and clusters as the names."""
    from dedupe import link_records
    from dedupe.defaults import DEFAULT_BLOCKING_RULES

    declared = MatchSettings(
        comparisons=[BUILTIN_COMPARISONS[c].model_dump(exclude_defaults=True)
                     for c in DEFAULT_COMPARISONS],
        blocking_rules=[BUILTIN_BLOCKING_RULES[r].model_dump(exclude_defaults=True)
                        for r in DEFAULT_BLOCKING_RULES],
    )  # fmt: skip
    assert all(not isinstance(c, str) for c in declared.comparisons)
    assert [r.__dict__ for r in rules_for(declared)] == [
        r.__dict__ for r in rules_for(MatchSettings())
    ]
    result = link_records(synthetic[0], declared)
    clusters = result.clusters.sort_values("record_key").reset_index(drop=True)
    expected = linked.clusters.sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(clusters, expected)
    assert len(result.pairs) == len(linked.pairs)
