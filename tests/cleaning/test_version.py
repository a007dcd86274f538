"""Code fingerprints decide when a stored layer (clean records, prepared records) is remade."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from cleaning import version as version_module
from cleaning.version import cleaner_version, code_fingerprint, module_files
from dedupe.incremental import PREPARED_CODE, prepared_version


def _files(tmp_path: Path, **contents: str) -> dict[str, Path]:
    files = {}
    for name, text in contents.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text, encoding="utf-8")
        files[name] = path
    return files


def test_a_fingerprint_changes_with_any_edit_rename_or_library_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path, a="x = 1\n", b="y = 2\n")
    base = code_fingerprint(files, ["pypinyin"])
    assert len(base) == 20
    assert code_fingerprint(dict(reversed(list(files.items()))), ["pypinyin"]) == base

    files["a"].write_text("x = 2\n", encoding="utf-8")
    edited = code_fingerprint(files, ["pypinyin"])
    assert edited != base

    renamed = {"c": files["a"], "b": files["b"]}
    assert code_fingerprint(renamed, ["pypinyin"]) != edited

    # Labels are separated from bytes: label "ab" + "c" is not label "a" + "bc".
    (tmp_path / "p.py").write_text("c", encoding="utf-8")
    (tmp_path / "q.py").write_text("bc", encoding="utf-8")
    assert code_fingerprint({"ab": tmp_path / "p.py"}, []) != code_fingerprint(
        {"a": tmp_path / "q.py"}, []
    )

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version",
        lambda dist: "999.0" if dist == "pypinyin" else real(dist),
    )  # fmt: skip
    assert code_fingerprint(files, ["pypinyin"]) != edited


def test_cleaner_and_preparation_versions_cover_their_code_and_libraries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(module_files(PREPARED_CODE)) == set(PREPARED_CODE)
    before_prepared, before_cleaner = prepared_version(), cleaner_version()
    assert before_prepared != before_cleaner

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version",
        lambda dist: "999.0" if dist == "phonenumbers" else real(dist),
    )  # fmt: skip
    version_module.cleaner_version.cache_clear()
    try:
        # A phonenumbers upgrade changes how phones are cleaned and prepared: both are remade.
        assert prepared_version() != before_prepared
        assert cleaner_version() != before_cleaner
    finally:
        version_module.cleaner_version.cache_clear()


def test_an_unknown_module_is_an_error_not_a_silent_fingerprint() -> None:
    with pytest.raises(RuntimeError, match="no_such_module_here"):
        module_files(["no_such_module_here"])


def test_layout_and_comments_do_not_change_a_fingerprint_but_code_and_docstrings_do(
    tmp_path: Path,
) -> None:
    """A formatter's run (or a comment) does not re-clean every record; a code edit does."""
    files = _files(tmp_path, a='def f(x):\n    """Doc."""\n    return [x, 1]\n')
    base = code_fingerprint(files, [])
    files["a"].write_text(
        '# a comment\ndef f(  x ):\n    """Doc."""\n\n'
        "    return [\n        x,\n        1,  # one\n    ]\n",
        encoding="utf-8",
    )
    assert code_fingerprint(files, []) == base
    files["a"].write_text('def f(x):\n    """Doc!"""\n    return [x, 1]\n', encoding="utf-8")
    assert code_fingerprint(files, []) != base
    files["a"].write_text('def f(x):\n    """Doc."""\n    return [x, 2]\n', encoding="utf-8")
    assert code_fingerprint(files, []) != base
    # a file that is not Python is hashed as its bytes: any byte counts
    data = tmp_path / "table.csv"
    data.write_text("a,b\n", encoding="utf-8")
    before = code_fingerprint({"t": data}, [])
    data.write_text("a, b\n", encoding="utf-8")
    assert code_fingerprint({"t": data}, []) != before
