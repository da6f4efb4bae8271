"""The README's benchmark tables agree with the results files they cite.

``benchmarks/check_readme.py`` is run on the real README, and on small synthetic README and
results-file pairs that show it can fail: an altered number, a wrong rounding, a missing
citation, a value taken from the wrong row.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import check_readme  # noqa: E402

RESULTS = "benchmarks/results/r.md"
MARK = f"<!-- results: {RESULTS} -->"


def _repo(tmp_path: Path, readme_table: str, results: str, marker: str = MARK) -> Path:
    """A checkout with a README whose benchmark section holds one table, and one results file."""
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / RESULTS).write_text(results, encoding="utf-8")
    readme = (
        "# demo\n\n| a | b |\n|---|---|\n| not | 12345 |\n\n## Benchmarks\n\nText.\n\n"
        f"{marker}\n{readme_table}\n\n## Development\n"
    )
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    return tmp_path


def _problems(root: Path) -> list[str]:
    problems, _ = check_readme.check_repository(root, docs=True)
    return [str(p) for p in problems]


def _one_cell(tmp_path: Path, readme_value: str, file_value: str) -> list[str]:
    table = f"| case | value |\n|---|---|\n| x | {readme_value} |"
    results = f"# r\n\n| case | value |\n|---|---|\n| x | {file_value} |\n"
    return _problems(_repo(tmp_path, table, results))


def test_real_readme_numbers_are_in_their_results_files():
    problems, summary = check_readme.check_repository(ROOT)
    assert "tables" in summary
    assert not problems, "\n".join(str(p) for p in problems)


def test_real_readme_cites_a_file_for_every_benchmark_table():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    tables = list(check_readme.find_tables(lines))
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "## Benchmarks")
    bench = [t for t in tables if t.line > start]
    assert len(bench) >= 5
    assert all(t.cited for t in bench)


def test_altered_number_is_reported_with_line_and_file(tmp_path):
    table = "| case | value | pull |\n|---|---|---|\n| x | 0.25 | 1.5 |\n| y | 0.31 | -0.2 |"
    results = "| case | value | pull |\n|---|---|---|\n| x | 0.25 | 1.5 |\n| y | 0.32 | -0.2 |\n"
    problems = _problems(_repo(tmp_path, table, results))
    assert len(problems) == 1
    readme_line = (tmp_path / "README.md").read_text().splitlines().index("| y | 0.31 | -0.2 |") + 1
    assert problems[0].startswith(f"README.md:{readme_line}: 0.31")
    assert RESULTS in problems[0] and "'value'" in problems[0]


@pytest.mark.parametrize(
    ("readme", "file"),
    [
        ("0.1235", "0.123456"),
        ("0.12", "0.123456"),
        ("1.2e+03", "1234.5"),
        ("1.23e+06", "1,234,567"),
        ("2.7·10⁴", "2.67e+04"),
        ("0.1", "0.0996"),
        ("0.0035", "0.00345"),  # a tie rounds either way
    ],
)
def test_rounded_file_value_passes(tmp_path, readme, file):
    assert _one_cell(tmp_path, readme, file) == []


@pytest.mark.parametrize(
    ("readme", "file"),
    [
        ("0.1234", "0.123456"),  # rounds to 0.1235
        ("0.124", "0.123456"),
        ("0.1612", "0.16"),  # more digits than the file has
        ("1.3e+03", "1234.5"),
        ("0.5", "-0.5"),  # the sign counts
        ("69.0", "68.6"),
    ],
)
def test_wrongly_rounded_or_altered_value_fails(tmp_path, readme, file):
    problems = _one_cell(tmp_path, readme, file)
    assert len(problems) == 1 and problems[0].split(": ")[1].startswith(readme.split("·")[0])


@pytest.mark.parametrize(
    ("readme", "file"),
    [
        ("2.9e-04", "0.00029"),
        ("0.00029", "2.9e-04"),
        ("2.9E-4", "0.00029"),
        ("1,090,304", "1090304"),
        ("1090304", "1,090,304"),
        ("−0.5", "-0.5"),
        ("-0.5", "−0.5"),
        ("−6.6e+03", "-6600"),
        ("+0.29", "0.29"),
        ("10⁻⁴", "1.00e-04"),
        ("5·10⁴", "50,000"),
        ("57.7 %", "57.7"),
        ("0.16×", "0.16"),
        (">5,002,939", "5002939"),
        ("**0.107**", "0.107"),
        ("0.92892(37)", "0.928921(372)"),
        ("2.32(22)e-04", "0.000232 ± 0.0000221"),
    ],
)
def test_formatting_variants_are_the_same_number(tmp_path, readme, file):
    assert _one_cell(tmp_path, readme, file) == []


def test_table_without_citation_fails(tmp_path):
    table = "| case | value |\n|---|---|\n| x | 1.5 |"
    problems = _problems(_repo(tmp_path, table, "1.5\n", marker=""))
    assert len(problems) == 1 and "cites no results file" in problems[0]


def test_marker_must_sit_above_a_table_and_name_an_existing_file(tmp_path):
    table = "| case | value |\n|---|---|\n| x | 1.5 |"
    root = _repo(tmp_path, table, "1.5\n", marker="<!-- results: benchmarks/results/gone.md -->")
    problems = _problems(root)
    assert any("gone.md does not exist" in p for p in problems)
    assert any("1.5" in p for p in problems)  # nothing to find it in
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("## Development", f"{MARK}\n\nText.\n\n## Dev"))
    assert any("not directly above a table" in p for p in _problems(root))


def test_value_from_another_row_with_a_matching_label_fails(tmp_path):
    table = "| method | within 1σ (%) |\n|---|---|\n| flowint-qmc | 94.6 |"
    results = (
        "| method | within 1σ (%) |\n|---|---|\n| flowint-qmc | 68.6 |\n| flowint-iid | 94.6 |\n"
    )
    problems = _problems(_repo(tmp_path, table, results))
    assert len(problems) == 1 and "row 'flowint-qmc' of" in problems[0]


def test_labels_and_headers_count_when_the_file_holds_their_numbers(tmp_path):
    table = "| case (dim=8) | within 1σ (%) |\n|---|---|\n| camel 8-D | 0.5 |"
    assert _problems(_repo(tmp_path, table, "camel:dim=8 within 1σ: 0.5\n")) == []
    problems = _problems(_repo(tmp_path / "b", table, "camel:dim=4 within 1σ: 0.5\n"))
    assert {p.split(": ")[1].split(" ")[0] for p in problems} == {"8"}


def test_row_link_narrows_the_files(tmp_path):
    root = _repo(tmp_path, "", "")
    (root / "benchmarks/results/s1.md").write_text("seed 1: 0.229\n")
    (root / "benchmarks/results/s2.md").write_text("seed 2: 0.103\n")
    marker = "<!-- results: benchmarks/results/s1.md benchmarks/results/s2.md -->"
    table = (
        "| seed | RAD | file |\n|---|---|---|\n"
        "| 1 | 0.229 | [s](benchmarks/results/s1.md) |\n"
        "| 2 | 0.229 | [s](benchmarks/results/s2.md) |\n"
    )
    readme = root / "README.md"
    readme.write_text(f"## Benchmarks\n\n{marker}\n{table}")
    problems = _problems(root)
    assert len(problems) == 1 and "0.229" in problems[0] and "s2.md" in problems[0]


def test_docs_tables_are_checked_only_where_marked(tmp_path):
    root = _repo(tmp_path, "| case | value |\n|---|---|\n| x | 1.5 |", "1.5\n")
    (root / "docs").mkdir()
    (root / "docs/a.md").write_text("| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert _problems(root) == []
    (root / "docs/a.md").write_text(f"{MARK}\n| x | y |\n|---|---|\n| 1 | 2.5 |\n")
    assert [p.split(": ")[0] for p in _problems(root)] == ["docs/a.md:4"]


def test_parse_numbers():
    def values(text: str) -> list[str]:
        tokens = check_readme.parse_numbers(text)
        return [t.text if t.verbatim else str(t.value) for t in tokens]

    assert values("0.92892(37)") == ["0.92892", "0.00037"]
    assert values("2.3223(22)e-04") == ["0.00023223", "2.2E-7"]
    assert [Decimal(v) for v in values("10⁻⁴ 2¹⁶ 1.2·10⁶")] == [
        Decimal("1e-4"), Decimal(65536), Decimal("1.2e6")]
    assert values("seed1 float32 c36e384 x_1") == []
    assert values("flowint 0.1.0, 2 cores") == ["0.1.0", "2"]
    assert values("[pinn](results/pinn_seed2/pinn.md) K − 1") == ["1"]
    assert values("1, 2 and 1,000,000") == ["1", "2", "1000000"]
    token = check_readme.parse_numbers("1.2e+03")[0]
    assert token.quantum == 100


def test_main_exit_status_and_report(tmp_path, capsys):
    root = _repo(tmp_path, "| case | v |\n|---|---|\n| x | 3.5 |", "3.4\n")
    assert check_readme.main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "README.md:" in out and "3.5" in out and "1 problem(s)" in out
    (root / RESULTS).write_text("3.5\n")
    assert check_readme.main(["--root", str(root)]) == 0
    assert "every number found" in capsys.readouterr().out
