"""Statements declare their result columns: a row type whose fields must be the select's output names,
in order, checked when the module that declares the statement is imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from mlmon.warehouse.sql import DIALECTS, Statement, StatementError, parse_template, render


class GroupRow(NamedTuple):
    model: Any
    w: Any
    n: Any


@pytest.mark.parametrize(("select", "expected"), [
    ("SELECT model, w FROM t", ["fields without a column: n", "column 3 is (none), field 3 is n"]),
    ("SELECT model, w, n, m FROM t", ["columns without a field: m", "column 4 is m, field 4 is (none)"]),
    ("SELECT model, w, COUNT(*) AS rows FROM t", ["fields without a column: n", "columns without a field: rows"]),
    ("SELECT model, n, w FROM t", ["first difference: column 2 is n, field 2 is w"]),
    ("SELECT model, w, COUNT(*) FROM t", ["columns without a field: COUNT(*)"]),
], ids=["missing", "extra", "renamed", "order", "unnamed"])
def test_mismatched_declaration_names_the_statement_and_the_columns(select: str, expected: list[str]) -> None:
    """A select whose output columns are not the row type's fields, in order, is refused with the difference."""
    with pytest.raises(StatementError) as raised:
        Statement("group counts", GroupRow, select)
    message = str(raised.value)
    assert message.startswith("statement 'group counts' returns columns that are not the fields of GroupRow")
    columns = select.removeprefix("SELECT ").removesuffix(" FROM t").replace("COUNT(*) AS rows", "rows")
    assert f"columns: {columns}\n" in message and "fields:  model, w, n" in message
    for line in expected:
        assert line in message


def test_a_module_with_a_mismatched_declaration_fails_to_import(tmp_path: Path) -> None:
    """The check runs at import time: the declaring module does not import."""
    module = tmp_path / "declares.py"
    module.write_text(
        "from typing import Any, NamedTuple\n"
        "from mlmon.warehouse.sql import Statement\n"
        "class Row(NamedTuple):\n    model: Any\n    n: Any\n"
        "COUNTS = Statement('model counts', Row, 'SELECT model, COUNT(*) AS rows FROM t GROUP BY model')\n"
    )
    spec = importlib.util.spec_from_file_location("declares", module)
    assert spec is not None and spec.loader is not None
    pattern = r"statement 'model counts' .*\n  columns: model, rows\n  fields:  model, n\n"
    with pytest.raises(StatementError, match=pattern):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_rows_are_read_by_name() -> None:
    """The engine's tuples come back as the declared row type."""
    statement = Statement("group counts", GroupRow, "SELECT model, w, COUNT(*) AS n FROM t GROUP BY model, w")
    [row] = list(statement.rows([("a", 3, 10)]))
    assert isinstance(row, GroupRow) and (row.model, row.w, row.n) == ("a", 3, 10)


def test_ctes_added_per_call_are_the_ctes_written_in_the_text() -> None:
    """``with_ctes`` gives the statement one would parse with the CTEs written before the template's own."""
    ctes = "picked AS (SELECT model, w FROM src), unpivoted AS (SELECT model, w FROM picked)"
    tail = ("counted AS (SELECT model, w, COUNT(*) AS n FROM unpivoted GROUP BY model, w)"
            " SELECT model, w, n FROM counted")
    with_own = Statement("counts", GroupRow, f"WITH {tail}").with_ctes(ctes)
    without = Statement("counts", GroupRow, "SELECT model, w, 1 AS n FROM unpivoted").with_ctes(ctes)
    for dialect in DIALECTS:
        assert render(with_own, dialect) == render(parse_template(f"WITH {ctes}, {tail}"), dialect)
        assert render(without, dialect) == render(
            parse_template(f"WITH {ctes} SELECT model, w, 1 AS n FROM unpivoted"), dialect)


def test_getters_read_columns_by_name() -> None:
    """A getter picks the named columns of the engine's tuples; a name that is not a column is refused."""
    statement = Statement("group counts", GroupRow, "SELECT model, w, COUNT(*) AS n FROM t GROUP BY model, w")
    assert statement.getter("n", "model")(("a", 3, 10)) == (10, "a")
    with pytest.raises(StatementError, match=r"statement 'group counts' has no column count \(GroupRow\)"):
        statement.getter("model", "count")
