"""The few SQL spellings that differ between SQLite, PostgreSQL and DuckDB, one function each.

Every JSON read in a segment goes through these, with JSON's own types kept strict (a string is
never a number, a boolean never 1) so that the three engines and the Python reference agree:

- `json_string(col, key)`: the value if it is a JSON string, else NULL (PostgreSQL: "C"
  collation, so `<` orders by code point as SQLite, DuckDB and Python do);
- `json_number(col, key)`: the value as a double if it is a JSON number, else NULL;
- `json_bool(col, key)`: 'true' / 'false' if it is a JSON boolean, else NULL;
- `json_present(col, key)`: the key exists with a non-null value (never NULL);
- `json_array_has(col, key, text)`: the value is an array holding that string;
- `text_contains(haystack, needle)`: substring test, case-sensitive (no LIKE escaping);
- `group_key(column)`: a GROUP BY key that lets SQLite read events through the name index;
- `by_customer(events)`: the events table, read on SQLite through `ix_events_customer_time`
  (`INDEXED BY`): real-time evaluation of a few customers must probe their events, not scan
  the workspace's (see `ByCustomer`);
- `by_name_customer(events)`: the events table, read on SQLite through
  `ix_events_name_customer_time`: one event's rows in customer order (see `ByNameCustomer`);
- `day_number(ts)`: whole days since 1970 (UTC), for purchase summaries.

Keys are validated (no quotes, backslashes or control characters) before they reach here, and
are rendered as literals so the same key gives the same SQL text (and cached plans).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Float, String, Table, bindparam, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Alias

_DUCK_NUMBER = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT', 'UHUGEINT', 'INTEGER', 'UINTEGER')"


def _path(key: str) -> str:
    return f"'$.\"{key}\"'"


def _pg_key(key: str) -> str:
    return f"'{key}'"


class _JsonRead(FunctionElement[Any]):
    """Base: clauses are (column, SQLite/DuckDB path literal, PostgreSQL key literal[, value])."""

    inherit_cache = True

    def __init__(self, column: Any, key: str, *extra: Any) -> None:
        super().__init__(column, literal_column(_path(key)), literal_column(_pg_key(key)), *extra)


class json_string(_JsonRead):
    type = String()
    name = "json_string"
    inherit_cache = True


class json_number(_JsonRead):
    type = Float()
    name = "json_number"
    inherit_cache = True


class json_bool(_JsonRead):
    type = String()
    name = "json_bool"
    inherit_cache = True


class json_present(_JsonRead):
    type = Boolean()
    name = "json_present"
    inherit_cache = True


class json_array_has(_JsonRead):
    type = Boolean()
    name = "json_array_has"
    inherit_cache = True

    def __init__(self, column: Any, key: str, value: str) -> None:
        super().__init__(column, key, bindparam(None, value, type_=String(), unique=True))


class text_contains(FunctionElement[bool]):
    type = Boolean()
    name = "text_contains"
    inherit_cache = True


def _parts(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(c, **kw) for c in element.clauses]


# -- SQLite -----------------------------------------------------------------------------------
@compiles(json_string, "sqlite")
@compiles(json_string)
def _sqlite_string(element: json_string, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"CASE WHEN json_type({col}, {path}) = 'text' THEN json_extract({col}, {path}) END"


@compiles(json_number, "sqlite")
@compiles(json_number)
def _sqlite_number(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN json_extract({col}, {path}) END"


@compiles(json_bool, "sqlite")
@compiles(json_bool)
def _sqlite_bool(element: json_bool, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"CASE json_type({col}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END"


@compiles(json_present, "sqlite")
@compiles(json_present)
def _sqlite_present(element: json_present, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"(json_type({col}, {path}) IS NOT NULL AND json_type({col}, {path}) <> 'null')"


@compiles(json_array_has, "sqlite")
@compiles(json_array_has)
def _sqlite_array_has(element: json_array_has, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _, value = _parts(element, compiler, **kw)
    return (
        f"(json_type({col}, {path}) = 'array' AND EXISTS (SELECT 1 FROM json_each({col}, {path}) AS je "
        f"WHERE je.type = 'text' AND je.value = {value}))"
    )


@compiles(text_contains, "sqlite")
@compiles(text_contains, "duckdb")
@compiles(text_contains)
def _instr_contains(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _parts(element, compiler, **kw)
    return f"(instr({haystack}, {needle}) > 0)"


# -- PostgreSQL (jsonb) -------------------------------------------------------------------------
@compiles(json_string, "postgresql")
def _pg_string(element: json_string, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, key = _parts(element, compiler, **kw)
    return f"(CASE WHEN jsonb_typeof({col} -> {key}) = 'string' THEN ({col} ->> {key}) END) COLLATE \"C\""


@compiles(json_number, "postgresql")
def _pg_number(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, key = _parts(element, compiler, **kw)
    # CASE, not AND: PostgreSQL may evaluate the cast before a type test written beside it.
    return f"CASE WHEN jsonb_typeof({col} -> {key}) = 'number' THEN ({col} ->> {key})::double precision END"


@compiles(json_bool, "postgresql")
def _pg_bool(element: json_bool, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, key = _parts(element, compiler, **kw)
    return f"CASE WHEN jsonb_typeof({col} -> {key}) = 'boolean' THEN ({col} ->> {key}) END"


@compiles(json_present, "postgresql")
def _pg_present(element: json_present, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, key = _parts(element, compiler, **kw)
    return f"(jsonb_typeof({col} -> {key}) IS NOT NULL AND jsonb_typeof({col} -> {key}) <> 'null')"


@compiles(json_array_has, "postgresql")
def _pg_array_has(element: json_array_has, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, key, value = _parts(element, compiler, **kw)
    return f"(jsonb_typeof({col} -> {key}) = 'array' AND ({col} -> {key}) @> jsonb_build_array(CAST({value} AS text)))"


@compiles(text_contains, "postgresql")
def _pg_contains(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _parts(element, compiler, **kw)
    return f"(strpos({haystack}, {needle}) > 0)"


# -- DuckDB (json extension, built in) ---------------------------------------------------------
@compiles(json_string, "duckdb")
def _duck_string(element: json_string, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"CASE WHEN json_type({col}, {path}) = 'VARCHAR' THEN json_extract_string({col}, {path}) END"


@compiles(json_number, "duckdb")
def _duck_number(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return (
        f"CASE WHEN json_type({col}, {path}) IN {_DUCK_NUMBER} "
        f"THEN TRY_CAST(json_extract_string({col}, {path}) AS DOUBLE) END"
    )


@compiles(json_bool, "duckdb")
def _duck_bool(element: json_bool, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"CASE WHEN json_type({col}, {path}) = 'BOOLEAN' THEN json_extract_string({col}, {path}) END"


@compiles(json_present, "duckdb")
def _duck_present(element: json_present, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _ = _parts(element, compiler, **kw)
    return f"(json_type({col}, {path}) IS NOT NULL AND json_type({col}, {path}) <> 'NULL')"


@compiles(json_array_has, "duckdb")
def _duck_array_has(element: json_array_has, compiler: SQLCompiler, **kw: Any) -> str:
    col, path, _, value = _parts(element, compiler, **kw)
    every = path[:-1] + "[*]'"
    strings = (
        f"list_transform(list_filter(json_extract({col}, {every}), lambda x: json_type(x) = 'VARCHAR'), "
        f"lambda x: json_extract_string(x, '$'))"
    )
    return f"(json_type({col}, {path}) = 'ARRAY' AND list_contains({strings}, {value}))"


def present(column: Any, key: str) -> ColumnElement[bool]:
    return json_present(column, key)


class group_key(FunctionElement[Any]):
    """GROUP BY this column — on SQLite as `+column`, a no-op that hides the column from the
    planner, which would otherwise scan `ix_events_customer_time` (the whole workspace, in
    customer order) to save a sort, instead of the narrow range of `ix_events_name_time_customer`."""

    type = String()
    name = "group_key"
    inherit_cache = True


@compiles(group_key)
def _group_key(element: group_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _parts(element, compiler, **kw)
    return column


@compiles(group_key, "sqlite")
def _sqlite_group_key(element: group_key, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _parts(element, compiler, **kw)
    return f"+{column}"


class ByCustomer(Alias):
    """`events AS events_by_customer`, with `INDEXED BY ix_events_customer_time` on SQLite.

    A hint was not enough: the statistics `ANALYZE` gathers with `analysis_limit` (the server's
    maintenance and the bench use it: milliseconds instead of a minute on 10M rows) put ~1,000
    rows behind each workspace id, so for more than ~90 customers SQLite chose to scan the
    covering name index over the whole workspace (10M entries, 2.6 s for 100 customers) rather
    than probe each customer's events (6 ms). Restricted queries always filter `customer_id IN
    (...)` on this alias, which the index serves."""

    inherit_cache = True
    index = "ix_events_customer_time"


class ByNameCustomer(Alias):
    """`events AS events_by_name_customer`, with `INDEXED BY ix_events_name_customer_time` on
    SQLite: one event's rows in customer order, for `GROUP BY customer_id` to aggregate as it
    reads. Left to itself SQLite may take `ix_events_customer_time` for that order instead — the
    whole workspace, 10M entries: two minutes for `lapsed_buyers` rather than one second."""

    inherit_cache = True
    index = "ix_events_name_customer_time"


def by_customer(table: Table) -> ByCustomer:
    return ByCustomer._construct(table, name="events_by_customer")


def by_name_customer(table: Table) -> ByNameCustomer:
    return ByNameCustomer._construct(table, name="events_by_name_customer")


def _alias(element: Alias, compiler: SQLCompiler, **kw: Any) -> str:
    visit: Any = compiler.visit_alias  # untyped in SQLAlchemy
    return str(visit(element, **kw))


@compiles(ByCustomer)
@compiles(ByNameCustomer)
def _plain_alias(element: Alias, compiler: SQLCompiler, **kw: Any) -> str:
    return _alias(element, compiler, **kw)


@compiles(ByCustomer, "sqlite")
@compiles(ByNameCustomer, "sqlite")
def _sqlite_indexed_alias(element: ByCustomer | ByNameCustomer, compiler: SQLCompiler, **kw: Any) -> str:
    text = _alias(element, compiler, **kw)
    return f"{text} INDEXED BY {element.index}" if kw.get("asfrom") else text


class day_number(FunctionElement[Any]):
    """Whole days since 1970-01-01 (UTC) of a stored time: what purchase summaries count in."""

    type = Float()
    name = "day_number"
    inherit_cache = True


@compiles(day_number, "sqlite")
@compiles(day_number)
def _sqlite_day(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    (ts,) = _parts(element, compiler, **kw)
    return f"CAST(julianday({ts}) - 2440587.5 AS INTEGER)"


@compiles(day_number, "postgresql")
def _pg_day(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    (ts,) = _parts(element, compiler, **kw)
    return f"floor(extract(epoch from {ts}) / 86400)"


@compiles(day_number, "duckdb")
def _duck_day(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    (ts,) = _parts(element, compiler, **kw)
    return f"floor(epoch({ts}) / 86400)"
