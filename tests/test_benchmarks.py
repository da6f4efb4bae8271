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


def test_policy_coverage_quick(tmp_path):
    import csv

    import policy_coverage

    out = tmp_path / "pc.md"
    cases = [policy_coverage.QUICK_CASES[0][0]]  # one integrand, one seed: < 20 s
    args = ["--quick", "--seeds", "1", "--cases", *cases, "--out", str(out)]
    runs = policy_coverage.main(args)
    groups = list(policy_coverage.GROUPS)
    assert len(runs) == len(groups) * len(cases)
    text = out.read_text()
    assert "CPU" in text and "git commit" in text
    ref = " / ".join(f"{100 * p:.2f}" for p in policy_coverage.REFERENCE.values())
    assert f"Student's t with {policy_coverage.DOF} degrees of freedom gives {ref} %" in text
    # one table per group (its integrands, then "all"), then the overall table
    for group in groups:
        section = text[text.index(f"## Group `{group}`"):]
        section = section[:section.index("\n## ", 3)]
        head, body = _table_lines(section, "case")
        assert head == policy_coverage.COLUMNS
        assert [cells[0] for cells in body] == [*cases, "all"]
        for cells in body:
            row = dict(zip(head, cells, strict=True))
            assert row["runs"] == (str(len(cases)) if row["case"] == "all" else "1")
            for col in ("within 1σ (%)", "within 2σ (%)", "within 3σ (%)"):
                assert 0 <= _number(row[col]) <= 100
            assert row["pass"] == "ok" or row["pass"].startswith("FAIL")
            assert math.isfinite(_number(row["max abs pull"]))
            counts = row[policy_coverage.SAMPLER_COLUMN].split(" / ")
            assert sum(int(n) for n in counts) == int(row["runs"])
    head, body = _table_lines(text[text.index("## Overall"):], "group")
    assert head == ["group"] + policy_coverage.COLUMNS[1:]
    assert [cells[0] for cells in body] == [*groups, "all"]
    # reuse: always a flow, and training calls entered the estimate
    reuse = dict(zip(head, body[groups.index("reuse")], strict=True))
    assert reuse[policy_coverage.SAMPLER_COLUMN] == f"0 / 0 / 0 / 0 / {len(cases)}"
    assert _number(reuse["reused > 0 (%)"]) > 0
    # one CSV row per run, with the columns asked for
    csv_path = tmp_path / "pc_runs.csv"
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == policy_coverage.CSV_COLUMNS
    assert {(r["group"], r["case"], r["seed"]) for r in rows} == {
        (g, c, "1") for g in groups for c in cases}
    for r in rows:
        assert r["method"] in policy_coverage.SAMPLERS, r
        pull = float(r["pull"])
        assert pull == pytest.approx((float(r["mean"]) - float(r["exact"])) / float(r["sdev"]))
        assert int(r["n_evals"]) > 0 and float(r["seconds"]) > 0
        assert int(r["randomizations"]) >= policy_coverage.FEWEST_RANDOMIZATIONS
    assert (tmp_path / "pc_pulls.png").read_bytes()[:4] == b"\x89PNG"
    # resumable: a second run finds every run in the CSV and makes none
    again = policy_coverage.main(args)
    assert len(again) == len(runs)
    with csv_path.open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def _peer_methods() -> list[str]:
    import importlib.util

    return ["flowint", "vegas", "rqmc"] + (
        ["madnis"] if importlib.util.find_spec("madnis") is not None else [])


def test_equal_cost_tiny(tmp_path):
    import equal_cost

    methods = _peer_methods()
    out = tmp_path / "ec.md"
    args = ["--cases", "camel:dim=2", "--budgets", "2e4", "--methods", *methods,
            "--no-breakeven", "--out", str(out), "--fresh"]
    rows = equal_cost.main(args)
    assert len(rows) == 1 and rows[0]["budget"] == 20_000
    text = out.read_text()
    assert "## Budget 20,000 calls" in text and "Break-even" not in text
    assert "absolute error" in text and "CPU" in text and "git commit" in text
    # 1. main table: err and pull per method, seconds, ratios to the best other right method
    head, body = _table_lines(text, "integrand")
    peers = [m for m in methods if m != "flowint"]
    assert head == (["integrand"] + [c for m in methods for c in (f"{m} err", f"{m} pull")]
                    + [f"{m} s" for m in methods]
                    + ["best other right", "flowint err / best", "flowint sdev / best sdev",
                       "goal"])
    assert len(body) == 1
    row = dict(zip(head, body[0], strict=True))
    for m in methods:
        for col in (f"{m} err", f"{m} pull", f"{m} s"):
            assert math.isfinite(_number(row[col])), (col, row[col])
    assert row["best other right"] in peers
    for col in ("flowint err / best", "flowint sdev / best sdev"):
        assert _number(row[col]) > 0, (col, row[col])
    assert row["goal"].startswith(("ok", "MISS"))
    # every run: calls, mean, sdev, errors, seconds (inside f too)
    dhead, dbody = _table_lines(text, "integrand | method")  # the per-run table
    assert dhead == equal_cost.DETAIL_COLUMNS
    assert [cells[1] for cells in dbody] == methods
    for cells in dbody:
        d = dict(zip(dhead, cells, strict=True))
        assert d["status"] == "ok", d
        assert 0 < _number(d["calls"]) <= 20_000
        for col in ("mean", "sdev", "err", "rel err", "pull", "wall s", "f s"):
            assert math.isfinite(_number(d[col])), (d["method"], col, d[col])
    # 2. equal wall time
    thead, tbody = _table_lines(text, "integrand | flowint s")
    assert thead == (["integrand", "flowint s", "flowint sdev"]
                     + [f"{m} sdev @ t_flowint" for m in peers]
                     + ["best right peer", "flowint sdev / best"])
    assert math.isfinite(_number(dict(zip(thead, tbody[0], strict=True))["flowint sdev / best"]))
    # resumable: a second run reuses the row
    assert equal_cost.main(args[:-1]) == common.load_rows(out)


def _cost_row(spec, seed, errs_pulls, budget=100_000):
    """A synthetic equal-cost row: ``{method: (err, pull)}`` with exact 1."""
    recs = [{"method": m, "status": "ok", "mean": 1.0 + e, "exact": 1.0,
             "sdev": abs(e / p) if p else 1.0, "pull": p, "wall_time": 1.0, "n_evals": budget,
             "f_time": 0.1, "note": ""} for m, (e, p) in errs_pulls.items()]
    return {"kind": "cost", "spec": spec, "budget": budget, "seed": seed,
            "methods": list(errs_pulls), "exact": 1.0, "records": recs}


def test_equal_cost_over_seeds_judges_the_rms_error():
    """One seed's ratio misses (flowint 2e-5 against rqmc 1e-5), the RMS over three seeds is
    within 1.2×; vegas, whose RMS error is far below the others', is not a bar with pull 5
    on one seed but is with pull 4 (three seeds allow one |pull| >= 3, an honest bar gives it
    with ~1 % per seed); flowint with |pull| >= 3 on two seeds, or >= 5 on one, misses."""
    import equal_cost

    rows = [_cost_row("camel:dim=2", 1, {"flowint": (2e-5, 1.0), "rqmc": (1e-5, 1.0),
                                         "vegas": (1e-7, 5.0)}),
            _cost_row("camel:dim=2", 2, {"flowint": (1e-5, 2.0), "rqmc": (2e-5, -1.0),
                                         "vegas": (1e-7, 0.1)}),
            _cost_row("camel:dim=2", 3, {"flowint": (1e-5, -1.0), "rqmc": (1.5e-5, 1.0),
                                         "vegas": (1e-7, 0.1)})]
    assert equal_cost.goal(rows[0])["misses"]  # one seed: 2× the best right
    groups = equal_cost.seed_groups(list(reversed(rows)))
    assert list(groups) == [("camel:dim=2", 100_000)]
    assert [r["seed"] for r in groups[("camel:dim=2", 100_000)]] == [1, 2, 3]
    q = equal_cost.over_seeds(groups[("camel:dim=2", 100_000)])
    assert q["best"] == "rqmc" and not q["methods"]["vegas"]["right"]
    assert q["ratio"] == pytest.approx(math.sqrt(6 / 7.25))
    # error bars |err / pull|: flowint 2e-5, 5e-6, 1e-5; rqmc 1e-5, 2e-5, 1.5e-5
    assert q["sdev_ratio"] == pytest.approx(math.sqrt(5.25 / 7.25))
    assert q["misses"] == []
    rows[0]["records"][2]["pull"] = 4.0
    q = equal_cost.over_seeds(rows)
    assert q["best"] == "vegas" and q["methods"]["vegas"]["tail"] == 1 and q["misses"]
    rows[0]["records"][2]["pull"] = 5.0
    rows[2]["records"][0]["pull"] = 3.0
    assert equal_cost.over_seeds(rows)["misses"] == []
    rows[1]["records"][0]["pull"] = -3.5
    assert equal_cost.over_seeds(rows)["misses"] == [
        "flowint |pull| >= 3 on 2 of 3 seeds (max 3.5, 1 allowed)"]
    rows[1]["records"][0]["pull"] = 2.0
    rows[2]["records"][0]["pull"] = 5.0  # one gross miss is never allowed
    assert equal_cost.over_seeds(rows)["misses"] == [
        "flowint |pull| >= 3 on 1 of 3 seeds (max 5, 1 allowed)"]
    rows[2]["records"][0]["pull"] = 3.0
    for row, note in zip(rows, ["sampler grid", "sampler identity; 1 warning(s): x",
                                "sampler identity"], strict=True):
        row["records"][0]["note"] = note
    lines = equal_cost.sampler_table(list(groups.values())).splitlines()
    assert lines[2] == "| camel:dim=2 | identity | 2 | 1.0e-05 | rqmc | 1.8e-05 | 0.566 |"
    assert lines[3] == "| camel:dim=2 | grid | 1 | 2.0e-05 | rqmc | 1.0e-05 | 2 |"
    text = equal_cost.tables(rows)
    assert "### Over seeds" in text and "| camel:dim=2 | 1–3 |" in text
    assert "| 1.4e-05 | 3 (1) |" in text  # flowint's rms error, largest |pull| (seeds >= 3)
    # the main table shows the first seed only (seeds 2 and 3 have flowint err 1e-5)
    assert text.count("| camel:dim=2 | 2.0e-05 |") == 1
    assert "| camel:dim=2 | 1.0e-05 |" not in text


def test_equal_cost_carries_the_records_of_methods_not_run():
    """--carry: a row of this run takes the records it lacks from the same integrand, budget
    and seed of another file, marked; nothing from other rows, nothing it already has."""
    import equal_cost

    mine = _cost_row("camel:dim=2", 2, {"flowint": (1e-5, 1.0), "vegas": (2e-5, 0.5)})
    source = [_cost_row("camel:dim=2", 1, {"flowint": (9e-5, 1.0), "madnis": (1e-3, 9.0)}),
              _cost_row("camel:dim=2", 2, {"flowint": (9e-5, 1.0), "madnis": (3e-4, 2.0)}),
              _cost_row("camel:dim=2", 2, {"madnis": (7e-4, 3.0)}, budget=20_000)]
    row = equal_cost.carry(mine, source)
    assert row["methods"] == ["flowint", "vegas", "madnis"]
    assert [r["mean"] - 1 for r in row["records"]] == pytest.approx([1e-5, 2e-5, 3e-4])
    assert [r.get("carried", False) for r in row["records"]] == [False, False, True]
    assert mine["methods"] == ["flowint", "vegas"]  # the run's own row is left as it was
    assert equal_cost.carry(mine, source[:1]) is mine
    assert equal_cost.goal(row)["best"] == "vegas"


def test_equal_cost_carry_run_resumes_without_running_again(tmp_path):
    """A --carry run's rows hold the carried methods; a second call finds them (one row, no
    duplicate in the over-seed tables) instead of running them again."""
    import equal_cost

    source, out = tmp_path / "source.md", tmp_path / "ec.md"
    base = ["--cases", "camel:dim=2", "--budgets", "2e4", "--no-breakeven"]
    equal_cost.main(base + ["--methods", "vegas", "--out", str(source)])
    args = base + ["--methods", "flowint", "rqmc", "--carry", str(source), "--out", str(out)]
    first = equal_cost.main(args)
    assert [r["methods"] for r in first] == [["flowint", "rqmc", "vegas"]]
    again = equal_cost.main(args)
    assert again == common.load_rows(out) and len(again) == 1
    # not run again: the same runs, to the wall seconds
    assert [(r["method"], r["mean"], r["wall_time"]) for r in again[0]["records"]] == \
        [(r["method"], r["mean"], r["wall_time"]) for r in first[0]["records"]]


def test_equal_cost_seeds_take_ranges():
    import equal_cost

    parser = equal_cost.build_parser()
    assert parser.parse_args(["--seeds", "3", "5-7"]).seeds == [[3], [5, 6, 7]]
    for bad in ("7-5", "x", "1-"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--seeds", bad])
    assert equal_cost.seed_list([1, 2, 3, 7, 9, 10, 12, 13, 14]) == "1–3, 7, 9, 10, 12–14"


def test_equal_cost_breakeven_formula():
    import equal_cost

    def rec(n, wall, f_time, mean=1.0, sdev=1e-4):
        return {"method": "x", "status": "ok", "mean": mean, "sdev": sdev, "exact": 1.0,
                "pull": 0.0, "n_evals": n, "wall_time": wall, "f_time": f_time}

    row = {"rtol": 1e-3, "flowint": rec(1_000, 12.0, 1.0), "vegas": rec(1_000_000, 2.0, 1.0)}
    q = equal_cost.breakeven(row)  # c* = (11 - 1) / 999,000 s = 10.01 µs
    assert q["c_star"] * 1e6 == pytest.approx(10 / 0.999)
    assert q["text"] == "10" and q["goal"].startswith("MISS")
    row["flowint"] = rec(1_000, 1.5, 1.0)
    assert equal_cost.breakeven(row)["text"] == "always (0)"
    row["flowint"] = rec(2_000_000, 1.5, 1.0)
    assert equal_cost.breakeven(row)["text"] == "never"


def test_equal_cost_breakeven_summary_takes_the_median_over_seeds():
    import equal_cost

    def rec(n, wall, pull=0.0):
        return {"method": "x", "status": "ok", "mean": 1.0, "sdev": 1e-4, "exact": 1.0,
                "pull": pull, "n_evals": n, "wall_time": wall, "f_time": 0.0}

    def row(spec, seed, wall_fl, vegas_pull=0.0):  # c* = (wall_fl - 1) s / 1,000,000 calls
        return {"spec": spec, "seed": seed, "rtol": 1e-3, "flowint": rec(1_000_000, wall_fl),
                "vegas": rec(2_000_000, 1.0, vegas_pull)}

    rows = [row("a", 1, 1.5), row("a", 2, 4.0), row("a", 3, 1.8), row("b", 1, 9.0)]
    text = equal_cost.breakeven_summary(rows)
    lines = [line for line in text.splitlines() if line.startswith("| a")]
    assert len(lines) == 1 and "| b" not in text  # one seed of b: no summary line
    cells = [c.strip() for c in lines[0].split("|")[1:-1]]
    assert cells[4] == "0.8"  # median of 0.5, 3, 0.8 µs
    assert cells[5] == "2 of 3" and cells[7] == "yes"
    rows[2] = row("a", 3, 2.5)  # 1.5 µs: the median misses
    cells = [c.strip() for c in equal_cost.breakeven_summary(rows).splitlines()[-1]
             .split("|")[1:-1]]
    assert cells[4] == "1.5" and cells[7].startswith("MISS")
    rows[1] = row("a", 2, 4.0, vegas_pull=9.0)  # a wrong vegas sets no bar: median of 0.5, 1.5
    cells = [c.strip() for c in equal_cost.breakeven_summary(rows).splitlines()[-1]
             .split("|")[1:-1]]
    assert cells[4] == "1" and cells[6] == "2 of 3" and cells[7] == "yes"


def test_cost_figures_tiny(tmp_path):
    import cost_figures

    paths = cost_figures.main(["--cases", "camel:dim=2", "--budgets", "2000", "5000",
                               "--methods", "flowint", "vegas", "rqmc", "--out", str(tmp_path)])
    png = tmp_path / "cost_camel_dim2.png"
    md = tmp_path / "cost_figures.md"
    assert set(paths) == {png, md}
    assert png.read_bytes()[:4] == b"\x89PNG"
    head, body = _table_lines(md.read_text(), "method")
    assert head == cost_figures.DATA_COLUMNS
    assert [(cells[0], cells[1]) for cells in body] == [
        (m, b) for m in ("flowint", "vegas", "rqmc") for b in ("2,000", "5,000")]
    for cells in body:
        row = dict(zip(head, cells, strict=True))
        assert row["status"] == "ok", row
        for col in ("calls", "wall s", "f s", "rel err", "rel sdev", "pull"):
            assert math.isfinite(_number(row[col])), (row["method"], col, row[col])


def test_train_step_smoke(capsys):
    """benchmarks/train_step.py: old and new step times and their ratio, for a tiny step."""
    train_step = pytest.importorskip("train_step")
    train_step.main(["--dims", "2", "3", "--repeats", "2", "--batch", "64", "--sample", "256"])
    out = capsys.readouterr().out
    head, body = _table_lines(out, "d")
    assert "CPU ratio old/new" in head and [row[0] for row in body] == ["2", "3"]
    for row in body:
        assert all(math.isfinite(_number(row[i])) and _number(row[i]) > 0 for i in range(1, 6))
    assert "flow.sample(256)" in out


def test_train_step_times_the_flow_the_integrator_trains():
    import flowint
    from flowint.integrator import default_flow_options

    train_step = pytest.importorskip("train_step")

    def size(flow):
        return sum(p.numel() for p in flow.parameters())

    for dim in (2, 3):
        trained = size(flowint.Integrator(dim, seed=0).flow)
        assert trained == size(flowint.make_flow(dim, **default_flow_options("rqs", dim)))
        assert size(train_step.make_setup(dim, 16)["new"].flow) == trained
        assert size(train_step.make_setup(dim, 16, kind="make_flow")["new"].flow) == \
            size(flowint.make_flow(dim)) != trained
    # 2-D keeps the wider, finer flow; from 3-D on it is the lighter one
    assert default_flow_options("rqs", 2) == {"hidden": 64, "grid": False, "bins": 8}
    assert default_flow_options("rqs", 3) == {"hidden": 32, "grid": False, "bins": 4}


def test_channel_alpha_tiny(tmp_path, monkeypatch):
    import channel_alpha

    budget, seeds, what = channel_alpha.CASES["bumps-frozen"]
    monkeypatch.setitem(channel_alpha.CASES, "bumps-frozen", (6000, seeds, what))
    out = tmp_path / "alpha.md"
    rows = channel_alpha.main(["--cases", "bumps-frozen", "--seeds", "0", "--out", str(out)])
    head, body = _table_lines(out.read_text(), "case")
    assert head == channel_alpha.COLUMNS and len(body) == len(rows) == 1
    row = rows[0]
    taken, ratio = row[4], row[10]
    assert " → " in row[2] and " → " in row[3]
    assert sum(float(a.split()[1]) for a in row[5].split(", ")) == pytest.approx(1.0, abs=0.01)
    if not taken:  # the two runs are then the same run
        assert ratio == 1.0 and row[6] == row[8]
    assert math.isfinite(ratio) and abs(row[7]) < 5


def test_rqmc_sets_tiny(tmp_path):
    """benchmarks/rqmc_sets.py: one integrand, a few seeds, small sets; the table has a row
    per scrambling and number of sets, the 16-set row is the unit, a smooth integrand's larger
    sets at equal calls are more precise over the seeds, and the calibration part judges each
    scrambling's pulls against Student's t."""
    import rqmc_sets

    res = rqmc_sets.run_case("gaussian:dim=2", 12, 12)
    assert sorted(res) == [4, 8, 16]
    assert all(r["rms"] > 0 and 0 <= r["tail3"] <= 1 for r in res.values())
    assert res[4]["rms"] < res[16]["rms"]
    cal = rqmc_sets.calibrate("gaussian:dim=2", 8, 64, 40, "linear")
    assert 0 <= cal["within1"] <= cal["within2"] <= 1
    assert cal["t1"] == pytest.approx(0.649, abs=0.001) and 0 < cal["band1"] < 0.2
    out = tmp_path / "sets.md"
    assert rqmc_sets.main(["--cases", "gaussian:dim=2", "--seeds", "3", "--calls-log2", "10",
                           "--calibration-cases", "gaussian:dim=2", "--reps", "4",
                           "--out", str(out)]) == 0
    text = out.read_text()
    n = len(rqmc_sets.SCRAMBLES)  # error rows: 3 set counts each; calibration rows: 2 each
    assert text.count("| gaussian:dim=2 |") == 3 * n + 2 * n and "RMS pull" in text
    assert "| gaussian:dim=2 | nested | 16 | 4,096 | 4 |" in text
    assert "| gaussian:dim=2 | interlaced | 8 | 8,192 | 4 |" in text


def test_strata_plan_tiny(tmp_path):
    """benchmarks/strata_plan.py: the annulus at 1.1·10⁶ calls is measured and ends in
    stratified sets, the smooth gaussian 2-D is not measured (its zone is every cell); the
    policy's own methods are restored afterwards."""
    import strata_plan

    from flowint.run.policy import Policy

    before = (Policy.strata_plan, Policy.strata_ratio)
    out = tmp_path / "plan.md"
    rows = strata_plan.main(["--cases", "annulus", "gaussian:dim=2", "--budgets", "1.1e6",
                             "--seeds", "1", "--out", str(out)])
    assert (Policy.strata_plan, Policy.strata_ratio) == before
    ring, smooth = rows
    assert ring["measured"] and ring["sampler"] == "strata" and ring["zone"] < 0.5
    assert ring["ratio"] >= 0.1 and abs(ring["pull"]) < 5
    assert not smooth["measured"] and smooth["zone"] == 1.0 and math.isnan(smooth["ratio"])
    text = out.read_text()
    assert "| annulus | 1,100,000 | 1 | 64 |" in text and "git commit" in text


def test_sobol_speed_tiny(tmp_path):
    """benchmarks/sobol_speed.py times the three scramblings and writes one row per (dim,
    size)."""
    import sobol_speed

    nested, linear, theirs = sobol_speed.time_sets(3, 64, 3)
    assert nested > 0 and linear > 0 and theirs > 0
    out = tmp_path / "sobol.md"
    assert sobol_speed.main(["--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("\n| ") >= len(sobol_speed.DIMS) * len(sobol_speed.SIZES)


def test_signed_channels_over_seeds_table():
    """The per-seed summary of benchmarks/signed_channels.py: median and largest per-sample
    relative std, largest |pull|, the shares of pulls within 1σ / 2σ / 3σ, and the issue's
    goal only for i.i.d. split rows."""
    sc = pytest.importorskip("signed_channels")
    assert sc._seeds("1-4") == [1, 2, 3, 4] and sc._seeds("7") == [7]
    row = ["signed_camel:dim=2", None, "auto", "no", 10, "r", "e", 0.5, "channels", 0.3]
    rows = [row[:1] + [seed] + row[2:7] + [pull] + row[8:9] + [rel] + ["+", "-", 1, 1, 1.0]
            for seed, pull, rel in ((1, 0.5, 0.3), (2, -2.5, 0.05), (3, 1.0, 0.09))]
    off = rows[0][:2] + ["off"] + rows[0][3:]
    table = sc.over_seeds(rows + [off], [1, 2, 3])
    split, single = table
    assert split[3] == "3 of 3" and split[4] == 0.09 and split[5] == 0.3 and split[6] == 2.5
    assert split[7] == "33.3 / 66.7 / 100.0"  # pulls 0.5, -2.5, 1.0 (1.0 is not within 1σ)
    assert split[9] == "ok (≤ 0.1)"
    assert single[9] == "—"  # one density: the goal is the split's
    worse = [r[:9] + [0.2] + r[10:] for r in rows]
    assert sc.over_seeds(worse, [1, 2, 3])[0][9].startswith("MISS")
