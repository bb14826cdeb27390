"""Validating a table against a schema: one vectorised pass, then the failures.

The work happens in two phases so a large file costs little more than reading
it. First every rule's cheap *screen* runs over the raw text of every row
(see :mod:`watcher.core.rules`), together with a hash-based search for repeated
keys. Then the exact rules run on clean values, but only for the rows some
screen flagged. Messages are constant per rule and column, so building the
failure list is a few filters and a concat; only repeated keys need a message
per row, because each names the other rows.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

from watcher.core import rules
from watcher.core.codes import Code, Problem
from watcher.core.headers import Column, HeaderMatch, match_headers, spreadsheet_letter
from watcher.core.schema import FORMULA_START, Field, Schema
from watcher.core.tables import Table, Unreadable, column, marked

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FIRST_DATA_ROW", "RowFailure", "ValidationReport", "validate"]

FIRST_DATA_ROW = 2
_NAMED_ROWS = 5

# Categorical text: most files repeat a few messages on many rows, and one
# where every row fails would otherwise hold a copy of each per row.
_FAILURE_SCHEMA = {
    "row": pl.Int64,
    "field": pl.Categorical,
    "code": pl.Categorical,
    "message": pl.Categorical,
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RowFailure:
    """One reason one row cannot be imported."""

    row: int
    field: str | None
    code: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """Everything validation learned about one file.

    ``failures`` is a frame with columns ``row`` (as a spreadsheet numbers it),
    ``field`` (the API attribute, null for a whole-row problem), ``code`` and
    ``message``, sorted by row. When ``file_errors`` is not empty every row
    failed for those reasons and ``failures`` is empty. Blank rows are not
    counted: ``rows_total == rows_valid + rows_failed`` always holds.
    """

    schema: Schema
    encoding: str | None
    columns: tuple[Column, ...]
    file_errors: tuple[Problem, ...]
    failures: pl.DataFrame
    rows_total: int
    rows_valid: int
    rows_failed: int
    rows_blank: int
    notes: tuple[str, ...] = ()
    table: Table | None = None
    valid: pl.Series | None = None

    @property
    def ok(self) -> bool:
        """Whether every row of the file can be imported."""
        return not self.file_errors and self.rows_failed == 0

    def row_failures(self) -> Iterator[RowFailure]:
        """The row failures as values, in row order."""
        for row, field, code, message in self.failures.iter_rows():
            yield RowFailure(row=row, field=field, code=code, message=message)

    def api_rows(self, *, failed: bool = False) -> pl.DataFrame:
        """The valid rows as the API receives them; with ``failed``, the failed rows too.

        One row per valid record: ``row`` (the spreadsheet row number), then
        one String column per field the file or a default supplies, named by
        API attribute, holding the clean value in normal form; null means the
        cell was empty, and the user's current value should be left alone.
        A failed row's value that has no normal form is null. Blank rows are
        never among them.
        """
        if self.table is None or self.valid is None:
            return pl.DataFrame(schema={"row": pl.Int64})
        rows = ~self.table.blank if failed else self.valid
        missing = self.schema.missing_values
        present = {c.field: c for c in self.columns if c.field is not None}
        exprs: list[pl.Expr] = []
        for field in self.schema.fields:
            default = None if field.default is None else _normal_default(field)
            if field.name in present:
                value = rules.api_text(
                    field,
                    rules.clean(pl.col(column(present[field.name].index)), missing),
                )
                if default is not None:
                    value = value.fill_null(default)
            elif default is not None:
                value = pl.lit(default, dtype=pl.String)
            else:
                continue
            exprs.append(value.alias(field.name))
        return (
            self.table.frame.with_row_index("record")
            .filter(rows)
            .select((pl.col("record").cast(pl.Int64) + self.table.first_row).alias("row"), *exprs)
        )


def _normal_default(field: Field) -> str | None:
    frame = pl.DataFrame({"v": [field.default]})
    result = frame.select(rules.api_text(field, pl.col("v"))).item()
    return None if result is None else str(result)


def _empty_failures() -> pl.DataFrame:
    """A failure frame with no rows."""
    return pl.DataFrame(schema=_FAILURE_SCHEMA)


def validate(table: Table | Unreadable, schema: Schema) -> ValidationReport:
    """Check every row of ``table`` against ``schema``."""
    if isinstance(table, Unreadable):
        return ValidationReport(
            schema=schema,
            encoding=table.encoding,
            columns=(),
            file_errors=(Problem(code=table.code, message=table.message),),
            failures=_empty_failures(),
            rows_total=0,
            rows_valid=0,
            rows_failed=0,
            rows_blank=0,
        )
    return _Validation(table, schema).run()


_Plan = list[tuple[str, Field, tuple[rules.Check, ...]]]


class _Validation:
    """The state of one validation run."""

    def __init__(self, table: Table, schema: Schema) -> None:
        self.match: HeaderMatch = match_headers(table.headers, schema)
        if self.match.report_columns:
            table = dataclasses.replace(table, frame=_restore_cells(table.frame, self.match))
        self.table = table
        self.schema = schema
        self.frame = table.frame
        self.ragged = marked(self.frame.height, table.ragged["record"])

    def report(
        self,
        *,
        file_errors: tuple[Problem, ...] = (),
        failures: pl.DataFrame | None = None,
        rows_failed: int,
        valid: pl.Series | None = None,
    ) -> ValidationReport:
        rows_blank = int(self.table.blank.sum())
        rows_total = self.frame.height - rows_blank
        return ValidationReport(
            schema=self.schema,
            encoding=self.table.encoding,
            columns=self.match.columns,
            file_errors=file_errors,
            failures=_empty_failures() if failures is None else failures,
            rows_total=rows_total,
            rows_valid=rows_total - rows_failed,
            rows_failed=rows_failed,
            rows_blank=rows_blank,
            notes=self.table.notes,
            table=self.table,
            valid=valid,
        )

    def run(self) -> ValidationReport:
        blank = self.table.blank
        problems = (*self.match.problems, *self.unnamed_problems())
        if problems:
            rows = self.frame.height - int(blank.sum())
            return self.report(file_errors=problems, rows_failed=rows)
        plan = self.plan()
        groups = self.key_groups()
        suspect, candidates = self.screen(plan, groups, blank)
        failures = pl.concat(
            [
                self.exact_failures(plan, suspect & ~self.ragged),
                _ragged_failures(self.table, blank),
                *(
                    _repeated_key_failures(self, code, names, found)
                    for (code, names), found in zip(groups, candidates, strict=True)
                ),
            ]
        ).sort("row", maintain_order=True)
        failed_rows = failures["row"].unique()
        valid = ~blank
        if failed_rows.len():
            valid = valid.scatter(failed_rows - self.table.first_row, values=False)
        return self.report(failures=failures, rows_failed=failed_rows.len(), valid=valid)

    def unnamed_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for index in self.match.unnamed:
            used = self.frame.select((pl.col(column(index)).str.strip_chars() != "").sum()).item()
            if used:
                problems.append(
                    Problem(
                        code=Code.HEADER_UNNAMED,
                        message=(
                            f"Column {spreadsheet_letter(index)} has no header but holds "
                            f"values in {used} rows: give it a header or delete it."
                        ),
                    )
                )
        return problems

    def plan(self) -> _Plan:
        """The checks of every imported column: (frame column, field, checks)."""
        plan: _Plan = []
        for col in self.match.imported():
            if col.field is None:
                continue
            field = self.schema.field(col.field)
            checks = rules.field_checks(
                field, label=col.header, missing_values=self.schema.missing_values
            )
            plan.append((column(col.index), field, checks))
        return plan

    def key_groups(self) -> list[tuple[Code, tuple[str, ...]]]:
        """The column sets whose values must not repeat, with the code to use."""
        present = {c.field: column(c.index) for c in self.match.imported() if c.field}
        groups: list[tuple[Code, tuple[str, ...]]] = []
        key = self.schema.primary_key
        if key and all(name in present for name in key):
            groups.append((Code.DUPLICATE_KEY, tuple(present[name] for name in key)))
        groups.extend(
            (Code.DUPLICATE_VALUE, (present[f.name],))
            for f in self.schema.fields
            if f.constraints.unique and f.name in present and (f.name,) != key
        )
        return groups

    def screen(
        self, plan: _Plan, groups: list[tuple[Code, tuple[str, ...]]], blank: pl.Series
    ) -> tuple[pl.Series, list[pl.Series]]:
        """Phase one over every row: suspect rows, and repeated-key candidates.

        The candidates of each key group are the rows whose key hash repeats,
        a superset of the rows whose key repeats.

        All screens and key hashes go into one ``select`` so polars spreads
        them over the cores. Sorting the 64-bit hashes and comparing
        neighbours is several times faster than ``is_duplicated`` on strings;
        a hash collision only adds a candidate, which phase two clears.
        """
        height = self.frame.height
        nothing = pl.repeat(value=False, n=height, eager=True, dtype=pl.Boolean)
        missing = self.schema.missing_values
        screens = [
            (
                check.screen(pl.col(name))
                if check.screen is not None
                else check.bad(rules.clean(pl.col(name), missing))
            )
            .fill_null(value=False)
            .alias(f"s{i}.{j}")
            for i, (name, _, checks) in enumerate(plan)
            for j, check in enumerate(checks)
        ]
        hashes: list[pl.Expr] = []
        for g, (_, names) in enumerate(groups):
            # Stripped text, not the full clean value: a conditional per row
            # costs three times the hash. Missing keys are dropped by "k".
            keys = [pl.col(n).str.strip_chars() for n in names]
            hashes.append(
                (pl.struct(keys).hash() if len(keys) > 1 else keys[0].hash()).alias(f"h{g}")
            )
            # A cheap test on the raw text; keys that are only whitespace or a
            # missing value pass it, and the exact phase drops them.
            hashes.append(
                pl.all_horizontal(
                    [pl.col(n).is_not_null() & (pl.col(n) != "") for n in names]
                ).alias(f"k{g}")
            )
        if height == 0 or not (screens or hashes):
            return nothing, [nothing for _ in groups]
        found = self.frame.select(*screens, *hashes)
        usable = ~blank & ~self.ragged
        suspect = (
            found.select(pl.any_horizontal(pl.col(r"^s.*$"))).to_series() if screens else nothing
        )
        candidates = []
        for g in range(len(groups)):
            # Eager: a lazy query holding these masks took a third longer.
            keyed = usable & found[f"k{g}"]
            hashes_of_keys = found[f"h{g}"].filter(keyed).sort()
            repeated = hashes_of_keys.filter(hashes_of_keys == hashes_of_keys.shift(1)).unique()
            candidates.append(keyed & found[f"h{g}"].is_in(repeated.implode()))
        for found_rows in candidates:
            suspect = suspect | found_rows
        return (suspect | self.ragged) & ~blank, candidates

    def exact_failures(self, plan: _Plan, rows_mask: pl.Series) -> pl.DataFrame:
        """Phase two: every rule, exactly, on the suspect rows that are whole."""
        rows = rows_mask.arg_true()
        if rows.is_empty() or not any(checks for _, _, checks in plan):
            return _empty_failures()
        missing = self.schema.missing_values
        described = [
            (f"{i}.{j}", field.name, check.code.value, check.message)
            for i, (_, field, checks) in enumerate(plan)
            for j, check in enumerate(checks)
        ]
        needed = list(dict.fromkeys(name for name, _, checks in plan if checks))
        # A filter by the mask, not a gather (see marked). Each column is
        # cleaned once, not once per check: the cleaning costs more than most checks.
        flags = (
            self.frame.select(needed)
            .filter(rows_mask)
            .select(rules.clean(pl.col(name), missing).alias(name) for name in needed)
            .select(
                (rows.cast(pl.Int64) + self.table.first_row).alias("row"),
                *(
                    check.bad(pl.col(name)).fill_null(value=False).alias(f"{i}.{j}")
                    for i, (name, _, checks) in enumerate(plan)
                    for j, check in enumerate(checks)
                ),
            )
            .lazy()
        )
        # One small frame per check of the rows it fails, in the checks'
        # order: sorted by row (stably) they list each row's failures in
        # that order. Only failing rows make a line: a file where all values
        # fail has millions, and no row is turned into a list first.
        found = pl.collect_all(
            [
                flags.filter(pl.col(name)).select(
                    "row",
                    field=pl.lit(field, dtype=pl.Categorical),
                    code=pl.lit(code, dtype=pl.Categorical),
                    message=pl.lit(message, dtype=pl.Categorical),
                )
                for name, field, code, message in described
            ]
        )
        return pl.concat(found).sort("row", maintain_order=True)


def _ragged_failures(table: Table, blank: pl.Series) -> pl.DataFrame:
    """Each row with too few or too many values, saying how many it has."""
    ragged = table.ragged.filter(~blank.gather(table.ragged["record"]))
    width = table.width
    if ragged.is_empty():
        return pl.DataFrame(schema=_FAILURE_SCHEMA)
    # A message per distinct count, not per row: a file can have millions.
    counts = ragged["fields"].unique().to_list()
    fields = pl.col("fields")
    return ragged.select(
        row=pl.col("record").cast(pl.Int64) + table.first_row,
        field=pl.lit(None, dtype=pl.Categorical),
        code=pl.when(fields < width)
        .then(pl.lit(Code.TOO_FEW_FIELDS.value))
        .otherwise(pl.lit(Code.TOO_MANY_FIELDS.value))
        .cast(pl.Categorical),
        message=fields.replace_strict(
            counts, [_ragged_message(n, width) for n in counts], return_dtype=pl.Categorical
        ),
    )


def _repeated_key_failures(
    validation: _Validation, code: Code, names: tuple[str, ...], candidates: pl.Series
) -> pl.DataFrame:
    """Each row whose key another row repeats, naming the other rows."""
    rows = candidates.arg_true()
    if rows.is_empty():
        return _empty_failures()
    keys = validation.frame.filter(candidates).select(
        *(
            rules.clean(pl.col(n), validation.schema.missing_values).alias(f"k{i}")
            for i, n in enumerate(names)
        ),
        row=rows.cast(pl.Int64) + validation.table.first_row,
    )
    groups = (
        keys.drop_nulls()
        .group_by([f"k{i}" for i in range(len(names))])
        # polars keeps the rows of each group in the frame's order: ascending.
        .agg(pl.col("row"))
        .filter(pl.col("row").list.len() > 1)
    )
    by_name = {column(c.index): c for c in validation.match.columns}
    label = " + ".join(f'"{by_name[n].header}"' for n in names)
    field = ",".join(by_name[n].field or "" for n in names)
    # Each message names at most a few other rows, taken from the group's
    # head: a row in the head names the head's other rows, and every row
    # past it shares one message naming the head's first rows. Built by
    # expressions, not row by row: a file sent twice over has a group for
    # every key, and one where every row repeats a key has a single group.
    groups = groups.select(
        "row", size=pl.col("row").list.len(), head=pl.col("row").list.head(_NAMED_ROWS + 1)
    )
    at, head = pl.col("at"), pl.col("head")
    own = (
        groups.select("head", "size", at=pl.int_ranges(pl.col("head").list.len(), dtype=pl.Int64))
        .explode("at")
        .select(
            row=head.list.get(at),
            phrase=_rows_phrase(
                pl.concat_list(head.list.slice(0, at), head.list.slice(at + 1)), pl.col("size")
            ),
        )
    )
    rest = (
        groups.filter(pl.col("size") > _NAMED_ROWS + 1)
        .select(
            row=pl.col("row").list.slice(_NAMED_ROWS + 1),
            phrase=_rows_phrase(head, pl.col("size")),
        )
        .explode("row")
    )
    return pl.concat([own, rest]).select(
        "row",
        field=pl.lit(field, dtype=pl.Categorical),
        code=pl.lit(code.value, dtype=pl.Categorical),
        message=(pl.lit(f"{label} repeats the value of ") + pl.col("phrase")).cast(pl.Categorical),
    )


def _rows_phrase(others: pl.Expr, size: pl.Expr) -> pl.Expr:
    """The phrase naming the first few of ``others``, out of the group's ``size`` - 1.

    Such as "row 7", "rows 2, 4" or "rows 3, 4, 5, 6, 7 and 3 more".
    """
    shown = others.list.head(_NAMED_ROWS)
    total = size - 1
    more = total - shown.list.len()
    return pl.concat_str(
        pl.when(total == 1).then(pl.lit("row ")).otherwise(pl.lit("rows ")),
        shown.list.eval(pl.element().cast(pl.String)).list.join(", "),
        pl.when(more > 0).then(pl.lit(" and ") + more.cast(pl.String) + pl.lit(" more")),
        ignore_nulls=True,
    )


def _restore_cells(frame: pl.DataFrame, match: HeaderMatch) -> pl.DataFrame:
    """Undo the apostrophe our failure report put before formula-like cells.

    Only for a file that is one of our reports sent back (it has our columns),
    so a customer's own leading apostrophe elsewhere is kept.
    """

    def neutralised(value: pl.Expr) -> pl.Expr:
        return pl.any_horizontal(value.str.starts_with(f"'{start}") for start in FORMULA_START)

    return frame.with_columns(
        pl.when(neutralised(pl.col(name))).then(pl.col(name).str.slice(1)).otherwise(pl.col(name))
        for name in (column(c.index) for c in match.imported())
    )


def _ragged_message(count: int, width: int) -> str:
    values = "1 value" if count == 1 else f"{count} values"
    if count < width:
        return f"This row has {values} but the header names {width} columns."
    return (
        f"This row has {values} but the header names {width} columns: the values "
        "after the last column would be lost."
    )
