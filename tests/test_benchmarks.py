"""Smoke tests of the benchmark scripts: each runs a tiny configuration (a few thousand calls)
and must produce a table with the expected columns and finite numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

common = pytest.importorskip("common")
pytest.importorskip("vegas")


def _table_lines(text: str, first_column: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_column} |"))
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    body = []
    for ln in lines[start + 1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != len(head) or cells[0] == first_column:
            break
        body.append(cells)
    return head, body


def _number(cell: str) -> float:
    return float(cell.lstrip(">").replace(",", "").replace("−", "-"))


def test_markdown_table_and_fmt():
    text = common.markdown_table(["a", "b"], [[1_234_567, 0.5], ["x|y", math.nan]])
    assert text.splitlines()[0] == "| a | b |"
    assert "1,234,567" in text and "x\\|y" in text and "—" in text


def test_rows_round_trip(tmp_path):
    path = tmp_path / "t.md"
    rows = [{"a": 1, "b": math.inf, "c": [math.nan, 2.0]}]
    path.write_text("# t\n" + common.save_rows_comment(rows))
    back = common.load_rows(path)
    assert back[0]["a"] == 1 and common.as_float(back[0]["b"]) == math.inf


def test_runners_give_uniform_records():
    import integrands

    f = integrands.get("camel:dim=2")
    for name in ("vegas", "plain-mc", "qmc_quad", "madnis"):
        rec = common.RUNNERS[name](f, 3000, 1000, 1)
        assert rec.method == name
        if name == "madnis" and not rec.ok:
            continue  # not installed here: a record that says so
        assert rec.ok, rec.status
        assert math.isfinite(rec.mean) and rec.sdev > 0 and rec.n_evals >= 1000
        assert math.isfinite(rec.rel_std) and math.isfinite(rec.pull)


def test_iflow_table_tiny(tmp_path):
    import iflow_table

    out = tmp_path / "iflow.md"
    rows = iflow_table.main(["--cases", "gaussian:dim=2", "--target", "5e-2", "--cap", "8000",
                             "--out", str(out), "--fresh"])
    assert len(rows) == 1
    text = out.read_text()
    head, body = _table_lines(text, "case")
    assert head == iflow_table.COLUMNS
    assert len(body) == 1
    row = dict(zip(head, body[0], strict=True))
    for col in ("flowint calls", "flowint pull", "vegas calls", "vegas pull"):
        assert math.isfinite(_number(row[col])), (col, row[col])
    assert "CPU" in text and "vegas" in text and "git commit" in text
    # resumable: a second run reuses the row
    again = iflow_table.main(["--cases", "gaussian:dim=2", "--target", "5e-2", "--cap", "8000",
                              "--out", str(out)])
    assert again == common.load_rows(out)


def test_equal_budget_tiny(tmp_path):
    import equal_budget

    out = tmp_path / "eq.md"
    rows = equal_budget.main(["--cases", "gaussian:dim=2", "--train", "4000", "--final", "2000",
                              "--out", str(out), "--fresh"])
    text = out.read_text()
    head, body = _table_lines(text, "integrand")
    assert head == equal_budget.COLUMNS
    methods = {cells[1] for cells in body}
    assert methods == set(equal_budget.METHODS)
    for cells in body:
        row = dict(zip(head, cells, strict=True))
        if row["status"] != "ok":
            assert row["method"] == "madnis"
            continue
        for col in ("mean", "sdev", "rel std/sample", "pull", "time s"):
            assert math.isfinite(_number(row[col])), (row["method"], col, row[col])
    rhead, rbody = _table_lines(text[text.index("| integrand | separable |"):], "integrand")
    assert len(rbody) == 1
    assert rhead == equal_budget.RATIO_COLUMNS
    assert math.isfinite(equal_budget.ratios(rows[0])["rel_std"])


def test_ablation_tiny(tmp_path):
    import ablation

    out = tmp_path / "abl.md"
    ablation.main(["--case", "gaussian:dim=2", "--train", "4000", "--final", "2000",
                   "--variants", "default", "loss=kl", "--peers", "vegas", "--out", str(out)])
    head, body = _table_lines(out.read_text(), "variant")
    assert head == ["variant", "status", "rel std/sample", "pull", "wall s", "/ vegas"]
    assert [cells[0] for cells in body] == ["(vegas)", "default", "loss=kl"]
    for cells in body:
        row = dict(zip(head, cells, strict=True))
        assert row["status"] == "ok"
        cols = ("rel std/sample", "pull") + (("/ vegas",) if row["variant"] != "(vegas)" else ())
        for col in cols:
            assert math.isfinite(_number(row[col])), (row["variant"], col, row[col])
    # the ratio is the variant's rel std over vegas's, both from this run
    ratio = _number(body[1][5])
    assert ratio == pytest.approx(_number(body[1][2]) / _number(body[0][2]), rel=0.02)


def test_figures_tiny(tmp_path):
    import figures

    data = {"camel:dim=2": [
        {"method": m, "ok": True, "calls": c, "rel_err": 1 / math.sqrt(c), "true_err": 0.5 / c}
        for m in ("flowint", "vegas") for c in (1000, 10_000)]}
    p1 = figures.error_vs_calls(data, tmp_path / "err.png")
    p2 = figures.weight_histograms("camel:dim=2", 2000, 1000, 1, tmp_path / "w.png")
    for p in (p1, p2):
        assert p.exists() and p.read_bytes()[:4] == b"\x89PNG"


def test_pinn_quick_tiny(tmp_path):
    import pinn

    runs = pinn.main(["--quick", "--problems", "peak2d", "--set", "stages=2", "--set", "steps=5",
                      "--set", "n_points=200", "--set", "n_boundary=50", "--set", "pool=1000",
                      "--set", "polish=3", "--out", str(tmp_path)])
    assert set(runs["peak2d"]) == {"uniform", "rad", "das", "oracle"}
    text = (tmp_path / "pinn.md").read_text()
    head, body = _table_lines(text, "problem")
    assert head[:4] == ["problem", "method", "rel. L2 error by stage", "final error"]
    assert [cells[1] for cells in body] == ["uniform", "rad", "das", "oracle"]
    for cells in body:
        assert math.isfinite(_number(cells[3].strip("*")))
    assert "## Targets" in text and (tmp_path / "pinn_points.png").exists()


def test_pilot_coverage_tiny(tmp_path):
    import pilot_coverage

    out = tmp_path / "pc.md"
    pilot_coverage.main(["--quick", "--seeds", "2", "--out", str(out)])
    text = out.read_text()
    head, body = _table_lines(text, "integrand")
    assert head[:4] == ["integrand", "rtol", "runs", "pilot only"]
    assert [cells[0] for cells in body] == [s for s, _ in pilot_coverage.CASES[:3]]
    for cells in body:
        row = dict(zip(head, cells, strict=True))
        assert row["runs"] == "2"
        assert 0 <= _number(row["within 3σ (%)"]) <= 100
    assert "Pooled over 6 runs" in text
