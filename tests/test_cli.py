"""The ``flowint`` command, called in-process through ``main([...])`` with tiny budgets."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from flowint import cli
from flowint.cli import main, parse_bounds_arg, parse_count, resolve_integrand

TINY = ["--budget", "6000", "--n-train", "4000", "--batch-size", "1000", "--seed", "1",
        "--no-progress"]

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_integrate_registry_integrand(capsys):
    assert main(["integrate", "camel", "--dim", "2", *TINY]) == 0
    out = capsys.readouterr().out
    assert "camel(dim=2, alpha=0.2)" in out and "exact" in out and "pull" in out


def test_integrate_json_is_machine_readable(capsys):
    out = run_json(capsys, "integrate", "camel:alpha=0.3", "--dim", "2", "--loss", "kl", *TINY)
    assert out["integrand"] == "camel(dim=2, alpha=0.3)" and out["loss"] == "kl"
    assert out["n_evals"] <= 6000 and out["n_evals_train"] == 4000
    assert abs(out["pull"]) < 5 and out["exact"] == pytest.approx(0.8856920456100865)
    assert out["chi2_dof"] is None or math.isfinite(out["chi2_dof"])


def test_rtol_stops_the_final_estimate(capsys):
    out = run_json(capsys, "integrate", "gaussian", "--dim", "2", "--budget", "50000",
                   "--n-train", "4000", "--batch-size", "1000", "--rtol", "0.01", "--seed", "2")
    assert out["rel_error"] <= 0.01 and out["n_evals"] < 50000


def test_integrate_module_function_with_bounds(capsys, tmp_path, monkeypatch):
    (tmp_path / "my_integrands.py").write_text(
        "import numpy as np\n\ndef square(x):\n    return np.asarray(x)[:, 0] ** 2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = run_json(capsys, "integrate", "my_integrands:square", "--dim", "2",
                   "--bounds", "0,2;0,1", *TINY)
    assert out["exact"] is None and out["bounds"] == [[0.0, 2.0], [0.0, 1.0]]
    assert abs(out["mean"] - 8 / 3) < 5 * out["sdev"]


def test_samples_and_checkpoint(capsys, tmp_path):
    events, state = tmp_path / "ev.npz", tmp_path / "run.ckpt"
    out = run_json(capsys, "integrate", "gaussian", "--dim", "2", *TINY, "--samples", "50",
                   "--out", str(events), "--checkpoint", str(state))
    assert events.exists() and state.exists() and out["samples"]["n"] == 50
    again = run_json(capsys, "integrate", "gaussian", "--dim", "2", *TINY,
                     "--checkpoint", str(state))
    assert (again["mean"], again["sdev"]) == (out["mean"], out["sdev"])  # the stored result


@pytest.mark.parametrize("argv, message", [
    (["integrate", "nonesuch"], "unknown integrand"),
    (["integrate", "camel:dim=3", "--dim", "2"], "contradicts"),
    (["integrate", "no_such_module_xyz:f", "--dim", "2"], "cannot import"),
    (["integrate", "math:pi", "--dim", "2"], "not callable"),
    (["integrate", "math:sqrt"], "--dim"),
    (["integrate", "camel", "--bounds", "0,1,2"], "bounds"),
    (["integrate", "camel", "--budget", "1.5"], "whole number"),
])
def test_usage_errors_exit_with_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_parsers():
    assert parse_count("1e6") == 1_000_000 and parse_count("1_000") == 1000
    with pytest.raises(argparse.ArgumentTypeError):
        parse_count("0")
    assert parse_bounds_arg("-1, 1") == (-1.0, 1.0)
    assert parse_bounds_arg("0,1;2,3") == [(0.0, 1.0), (2.0, 3.0)]
    target = resolve_integrand("camel:alpha=0.1", 3)
    assert target.dim == 3 and target.exact == pytest.approx(target.f.exact)


def test_list(capsys):
    assert main(["list"]) == 0
    assert "camel" in capsys.readouterr().out


def test_bench_lists_and_runs_scripts(capsys):
    assert main(["bench"]) == 0
    listing = capsys.readouterr().out
    assert "gpu" in listing and "distributed" in listing
    assert main(["bench", "nonesuch"]) == 2
    assert "no benchmark named" in capsys.readouterr().err
    assert main(["bench", "gpu", "--help"]) == 0  # arguments are passed on to the script


def test_demo_side_by_side(capsys, monkeypatch):
    argv = ["demo", "--dim", "2", "--budget", "2e4", "--no-progress"]
    rows = run_json(capsys, *argv)
    assert [r["method"] for r in rows] == ["flowint", "VEGAS", "plain RQMC"]
    for r in rows:
        assert abs(r["pull"]) < 5 and r["rel_error"] > 0 and 0 < r["calls"] <= 20_000
    # The table, from the same numbers (without running the demo again).
    monkeypatch.setattr(cli, "run_demo", lambda **kwargs: rows)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "flowint" in out and "VEGAS" in out and "plain RQMC" in out
    assert f"{rows[0]['pull']:+.2f}" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "flowint" in capsys.readouterr().out
