"""Check every number in the README's benchmark tables against the results file it cites.

The README's benchmark tables are copies of (or extracts from) the tables that the scripts in
``benchmarks/`` write to ``benchmarks/results/``. This script keeps the two tied: a number in a
table that is not in the results file the table cites is an error, and so is a table that
cites no results file.

Conventions
-----------

**Where the checked tables are.** In ``README.md`` every markdown table from the
``## Benchmarks`` heading to the next level-2 heading must cite its results file; a table there
without a citation is an error. In ``docs/*.md`` only tables that carry a citation are checked.
Fenced code blocks are skipped.

**How a table cites its file.** The nearest non-blank line above the table's header row is a
marker (an HTML comment, invisible on GitHub)::

    <!-- results: benchmarks/results/equal_cost.md -->

Paths are relative to the repository root; several files may be listed, separated by spaces,
and their numbers are pooled. A marker that is not followed by a table is an error, and so is
a cited file that does not exist. A row that itself links a file under ``benchmarks/results/``
(``[seed 1](benchmarks/results/pinn_seed1/pinn.md)``) is checked against the files it links,
not against the table's.

**What a number is.** Every numeric token in every cell, the header row included: integers
(``1,090,304`` with thousands separators), decimals, scientific notation (``2.9e-04``,
``1.2e+03``), powers written with superscripts (``10⁻⁴``, ``2.7·10⁴``, ``2¹⁶``), values with an
uncertainty in parentheses (``0.92892(37)``, ``2.3223(22)e-04``: the value and the uncertainty
are two numbers), signed values (``-``, ``+`` and the unicode minus ``−`` alike). A ``%`` or
``×`` after a number, or letters such as ``σ``, ``d`` or ``s``, do not change it. Digits glued
to the end of a word (``seed1``, ``float32``, the hash ``c36e384``) belong to an identifier and
are not numbers. A dotted version (``0.1.0``) is one token, matched as text.

**When a number is found.** A README number ``r`` written with its last digit in the decimal
place ``q`` (``q = 0.01`` for ``0.16``, ``1e-05`` for ``2.9e-04``, ``100`` for ``1.2e+03``,
``10⁴`` for ``5·10⁴``) is found when the results file holds a number ``v`` with
``|v − r| ≤ q/2``: the README may round a file's value, never more loosely (``0.1234`` is not
found in a file holding ``0.123456``, nor ``0.1612`` in one holding ``0.16``). Formatting
does not matter (``2.9e-04`` is ``0.00029``, ``1,090,304`` is ``1090304``, ``−`` is ``-``); the
sign does.

**Where in the file it must be.** If the row's first cell (its label, markup stripped, case
ignored) is also the first cell of one or more table rows in the cited file, the row's numbers
must be in those rows; otherwise anywhere in the file. The header row's numbers are looked up
anywhere in the file. So labels such as ``camel 8-D`` or ``budget (B = 5·10⁴)`` and headers
such as ``within 1σ (%)`` pass only because their numbers occur in the cited file, and a value
copied from the wrong row of a table with matching labels fails.

Usage::

    python benchmarks/check_readme.py            # exit status 1 and a report on any problem
    python benchmarks/check_readme.py --root /path/to/checkout --no-docs
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

__all__ = [
    "BENCHMARK_HEADING",
    "MARKER",
    "NumberToken",
    "Problem",
    "ResultsIndex",
    "Table",
    "check_markdown",
    "check_repository",
    "find_tables",
    "main",
    "parse_numbers",
]

BENCHMARK_HEADING = "Benchmarks"
"""Title of the README's level-2 section (running to the next one) whose tables are checked."""

RESULTS_DIR = "benchmarks/results"
"""Directory of the results files; links into it cite a results file per row."""

MARKER = re.compile(r"^\s*<!--\s*results:\s*(?P<paths>.*?)\s*-->\s*$")
"""A citation marker line: ``<!-- results: PATH [PATH ...] -->``."""

_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUP = "[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+"
_VERSION = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![\w.])")
_NUMBER = re.compile(
    r"(?<![\w.])"
    r"(?P<sign>[-+−])?"
    r"(?P<mant>[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)"
    r"(?:\((?P<err>[0-9]+(?:\.[0-9]+)?)\))?"
    r"(?:(?P<sci>[eE][-+−]?[0-9]+)"
    rf"|\s?[·×]\s?10(?P<tensup>{_SUP})"
    rf"|(?P<sup>{_SUP}))?"
)
_LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class NumberToken:
    """One number read from markdown text.

    Arguments:
        text: the token as written (``"2.9e-04"``, ``"(37)"`` for an uncertainty).
        value: its exact value.
        quantum: the decimal place of its last written digit (``0.01`` for ``"0.16"``);
            ``0`` for an exact value such as ``2¹⁶``.
        verbatim: a dotted version (``"0.1.0"``), compared as text rather than as a value.
    """

    text: str
    value: Decimal
    quantum: Decimal
    verbatim: bool = False


@dataclass(frozen=True)
class Problem:
    """One thing the checker could not confirm.

    Arguments:
        path: the markdown file, relative to the repository root.
        line: 1-based line number in that file.
        message: what is wrong.
    """

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Table:
    """A markdown table and what it cites.

    Arguments:
        line: 1-based line number of the header row.
        rows: the rows as lists of cell texts, header first, separator row left out.
        row_lines: 1-based line number of each row in ``rows``.
        cited: the results files named by the marker above it (empty when it has none).
        marker_line: line number of that marker, 0 when there is none.
    """

    line: int
    rows: list[list[str]]
    row_lines: list[int]
    cited: list[str] = field(default_factory=list)
    marker_line: int = 0


def _scale(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


def _token(match: re.Match[str]) -> list[NumberToken]:
    """The number (and, for ``1.23(4)``, its uncertainty) of one regex match."""
    sign = "-" if match["sign"] in ("-", "−") else ""
    mant = match["mant"].replace(",", "")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    if match["sup"]:
        exp = int(match["sup"].translate(_SUPERSCRIPT))
        value = Decimal(mant) ** exp
        quantum = _scale(exp) if mant == "10" else Decimal(0)
        return [NumberToken(match[0], Decimal(sign + "1") * value, quantum)]
    exp = 0
    if match["sci"]:
        exp = int(match["sci"][1:].replace("−", "-"))
    elif match["tensup"]:
        exp = int(match["tensup"].translate(_SUPERSCRIPT))
    quantum = _scale(exp - decimals)
    tokens = [NumberToken(match[0], Decimal(sign + mant).scaleb(exp), quantum)]
    if match["err"]:
        err = match["err"]
        err_value = Decimal(err).scaleb(exp) if "." in err else Decimal(err) * quantum
        err_quantum = quantum if "." not in err else _scale(exp - len(err.split(".")[1]))
        tokens.append(NumberToken(f"({err})", err_value, err_quantum))
    return tokens


def parse_numbers(text: str) -> list[NumberToken]:
    """Every number in ``text``, in order, by the rules of the module docstring.

    Arguments:
        text: markdown text (a cell, a line or a whole file); link targets are not read.

    Returns:
        The numbers, dotted versions first (as ``verbatim`` tokens), then the others.

    Example:
        >>> [str(t.value) for t in parse_numbers("1,090,304 calls, −2.9e-04, 0.5(12)")]
        ['1090304', '-0.00029', '0.5', '1.2']
    """
    text = _LINK_TARGET.sub("]", text)
    tokens = [
        NumberToken(m[0], Decimal(0), Decimal(0), verbatim=True) for m in _VERSION.finditer(text)
    ]
    text = _VERSION.sub(" ", text)
    for match in _NUMBER.finditer(text):
        tokens.extend(_token(match))
    return tokens


def _cells(line: str) -> list[str]:
    """The cells of a table row; ``\\|`` is a literal bar, not a separator."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _is_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def find_tables(lines: Sequence[str]) -> Iterator[Table]:
    """The markdown tables of ``lines`` (outside fenced code), each with its marker if any.

    Arguments:
        lines: the file's lines.

    Returns:
        An iterator of tables in file order.
    """
    in_fence = False
    i = 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            in_fence = not in_fence
        if in_fence or not _is_row(lines[i]) or i + 1 >= len(lines):
            i += 1
            continue
        if not _SEPARATOR.match(lines[i + 1]):
            i += 1
            continue
        start = i
        rows, row_lines = [_cells(lines[i])], [i + 1]
        i += 2
        while i < len(lines) and _is_row(lines[i]):
            rows.append(_cells(lines[i]))
            row_lines.append(i + 1)
            i += 1
        table = Table(line=start + 1, rows=rows, row_lines=row_lines)
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0 and (m := MARKER.match(lines[above])):
            table.cited = m["paths"].split()
            table.marker_line = above + 1
        yield table


def _label(cell: str) -> str:
    return re.sub(r"[*`_]", "", cell).strip().lower()


class ResultsIndex:
    """The numbers of one or more results files, pooled, and of their rows by label.

    Arguments:
        texts: the files' contents.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = list(texts)
        self.everywhere = _Pool(self.texts)
        rows: dict[str, list[str]] = {}
        for text in self.texts:
            for table in find_tables(text.splitlines()):
                for cells in table.rows[1:]:
                    rows.setdefault(_label(cells[0]), []).append(" | ".join(cells))
        self.rows = {label: _Pool(found) for label, found in rows.items()}

    def pool_for(self, label: str | None) -> tuple[_Pool, bool]:
        """The numbers a row with this label is checked against.

        Arguments:
            label: the README row's first cell, or ``None`` for the header row.

        Returns:
            The pool, and whether it is row-scoped (``True``) or the whole file.
        """
        if label is not None and _label(label) in self.rows:
            return self.rows[_label(label)], True
        return self.everywhere, False


class _Pool:
    """Sorted values and raw text of some results text, for rounding-aware look-ups."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.text = "\n".join(texts)
        self.values = sorted(t.value for t in parse_numbers(self.text) if not t.verbatim)

    def holds(self, token: NumberToken) -> bool:
        """Whether ``token`` is a value of the pool rounded to the token's last digit."""
        if token.verbatim:
            return re.search(rf"(?<![\w.]){re.escape(token.text)}(?![\w.])", self.text) is not None
        half = token.quantum / 2
        i = bisect.bisect_left(self.values, token.value - half)
        return i < len(self.values) and self.values[i] <= token.value + half


def _row_links(cells: Sequence[str], doc_dir: Path, root: Path) -> list[str]:
    """Results files linked from a row, as paths relative to ``root``."""
    found = []
    for target in _LINK_TARGET.findall(" ".join(cells)):
        path = (doc_dir / target.split("#")[0]).resolve()
        try:
            rel = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        if rel.startswith(RESULTS_DIR + "/") and rel.endswith(".md"):
            found.append(rel)
    return found


def _read_cited(paths: Sequence[str], root: Path, cache: dict[str, str | None]) -> list[str]:
    """Contents of the cited files that exist (``cache`` maps path -> text or None)."""
    for path in paths:
        if path not in cache:
            full = root / path
            cache[path] = full.read_text(encoding="utf-8") if full.is_file() else None
    return [text for p in paths if (text := cache[p]) is not None]


def _check_table(
    table: Table, rel: str, doc_dir: Path, root: Path, cache: dict[str, str | None]
) -> tuple[list[Problem], int]:
    """Problems of one cited table, and how many numbers were checked."""
    problems: list[Problem] = []
    for path in table.cited:
        if _read_cited([path], root, cache) == []:
            problems.append(Problem(rel, table.marker_line, f"cited file {path} does not exist"))
    index = ResultsIndex(_read_cited(table.cited, root, cache))
    header = table.rows[0]
    checked = 0
    for n, (cells, line) in enumerate(zip(table.rows, table.row_lines, strict=True)):
        links = _row_links(cells, doc_dir, root) if n else []
        where, row_index = " ".join(table.cited), index
        if links:
            where, row_index = " ".join(links), ResultsIndex(_read_cited(links, root, cache))
        pool, scoped = row_index.pool_for(cells[0] if n else None)
        for col, cell in enumerate(cells):
            for token in parse_numbers(cell):
                checked += 1
                if pool.holds(token):
                    continue
                column = header[col] if col < len(header) else f"column {col + 1}"
                place = f"row {cells[0]!r} of {where}" if scoped else where
                what = "header" if n == 0 else f"row {cells[0]!r}, column {column!r}"
                problems.append(Problem(rel, line, f"{token.text} ({what}) not found in {place}"))
    return problems, checked


def _benchmark_span(lines: Sequence[str]) -> tuple[int, int]:
    """0-based [start, end) of the benchmark section; (0, 0) when there is none."""
    start = next(
        (i for i, ln in enumerate(lines) if ln.strip() == f"## {BENCHMARK_HEADING}"), None
    )
    if start is None:
        return 0, 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def check_markdown(
    path: Path, root: Path, *, require_citations: bool, cache: dict[str, str | None] | None = None
) -> tuple[list[Problem], int, int]:
    """Check the tables of one markdown file.

    Arguments:
        path: the markdown file.
        root: the repository root (cited paths are relative to it).
        require_citations: the README rule: every table of the benchmark section must cite a
            results file, and only that section is read. Otherwise every table that carries
            a marker is checked and the others are left alone.
        cache: cited files already read, shared between calls.

    Returns:
        The problems, the number of tables checked and the number of numbers checked.
    """
    cache = {} if cache is None else cache
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    start, end = _benchmark_span(lines) if require_citations else (0, len(lines))
    if require_citations and end == 0:
        return [Problem(rel, 1, f"no '## {BENCHMARK_HEADING}' section")], 0, 0
    problems: list[Problem] = []
    tables = checked = 0
    marked = set()
    for table in find_tables(lines):
        if not start <= table.line - 1 < end:
            continue
        if not table.cited:
            if require_citations:
                problems.append(Problem(rel, table.line, "table cites no results file "
                                        "(put '<!-- results: benchmarks/results/FILE.md -->' "
                                        "on the line above it)"))
            continue
        marked.add(table.marker_line)
        found, n = _check_table(table, rel, path.parent, root, cache)
        problems += found
        tables += 1
        checked += n
    for i in range(start, end):
        if MARKER.match(lines[i]) and i + 1 not in marked:
            problems.append(Problem(rel, i + 1, "results marker not directly above a table"))
    return sorted(problems, key=lambda p: p.line), tables, checked


def check_repository(root: Path, *, docs: bool = True) -> tuple[list[Problem], str]:
    """Check ``README.md`` (and the marked tables of ``docs/*.md``) under ``root``.

    Arguments:
        root: the repository root.
        docs: also check tables with a marker in ``docs/*.md``.

    Returns:
        The problems and a one-line-per-file summary.
    """
    cache: dict[str, str | None] = {}
    problems, tables, checked = check_markdown(
        root / "README.md", root, require_citations=True, cache=cache
    )
    summary = [f"README.md: {tables} tables, {checked} numbers checked"]
    for doc in sorted((root / "docs").glob("*.md")) if docs else []:
        found, t, n = check_markdown(doc, root, require_citations=False, cache=cache)
        problems += found
        if t:
            summary.append(f"{doc.relative_to(root).as_posix()}: {t} tables, {n} numbers checked")
    return problems, "\n".join(summary)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check and print a report.

    Arguments:
        argv: command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0 when every number was found and every table cites a file, else 1.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: the checkout holding this script)")
    parser.add_argument("--no-docs", action="store_true", help="check README.md only")
    args = parser.parse_args(argv)
    problems, summary = check_repository(args.root, docs=not args.no_docs)
    print(summary)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)" if problems else "every number found in its cited file")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
