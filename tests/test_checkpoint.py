"""Checkpoints: atomic files, exact resumption after Ctrl-C or SIGKILL, loading for reuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from _slow_integrands import CountCalls, CtrlC, gauss

import flowint
from flowint import checkpoint as ckpt

HERE = Path(__file__).resolve().parent
SMALL = dict(seed=3, batch_size=500, progress=False, backend="numpy",
             flow_options={"hidden": 8}, warmup=2)


def exact(r: flowint.Result) -> tuple:
    return r.mean, r.sdev, r.chi2, r.n_evals, records(r.history)


def records(history) -> list[tuple]:
    """What must match between runs (not the NaN losses of warm-up, nor wall times)."""
    return [(h.phase, h.n, h.mean, h.sdev) for h in history]


def test_file_is_plain_data_and_round_trips(tmp_path):
    integ = flowint.Integrator(2, **SMALL)
    integ.train(gauss, 3000)
    path = ckpt.save_checkpoint(integ, tmp_path / "sub" / "a.ckpt")
    blob = torch.load(path, weights_only=True)  # no pickled code inside
    assert blob["format"] == ckpt.FORMAT
    assert [p.name for p in path.parent.iterdir()] == ["a.ckpt"]  # no temporary file left

    again = flowint.load_checkpoint(path)
    assert again.n_evals == integ.n_evals
    assert records(again.history) == records(integ.history)
    x0, w0 = integ.sample(100)
    x1, w1 = again.sample(100)
    assert torch.equal(x0, x1) and torch.equal(w0, w1)  # same flow, same random state
    assert again.settings["checkpoint"] is None


def test_format_2_checkpoint_is_read_with_log_targets(tmp_path):
    """Format 2 kept the buffer's linear targets; reading one converts them to logarithms
    (``log t + log_scale``), so the resumed run trains on the same buffer."""
    integ = flowint.Integrator(2, **SMALL)
    integ.train(gauss, 3000)
    blob = integ.state_dict()
    old = dict(blob, format="flowint.checkpoint/2")
    old["state"] = dict(blob["state"], buffer=[[u, torch.exp(t), q]
                                                for u, t, q in blob["state"]["buffer"]])
    torch.save(old, tmp_path / "old.ckpt")
    read = ckpt.read_checkpoint(tmp_path / "old.ckpt")
    assert read["format"] == ckpt.FORMAT
    for (_, t_new, _), (_, t_ref, _) in zip(read["state"]["buffer"], blob["state"]["buffer"],
                                            strict=True):
        torch.testing.assert_close(t_new, t_ref.to(torch.float64), rtol=1e-12, atol=0)
    again = flowint.Integrator(2, **SMALL)
    again.load_state_dict(old)  # an in-memory state of the old format too
    assert len(again.state.buffer) == len(integ.state.buffer)
    torch.save(dict(blob, format="flowint.checkpoint/1"), tmp_path / "older.ckpt")
    with pytest.raises(ValueError, match="format 'flowint.checkpoint/1'"):
        ckpt.read_checkpoint(tmp_path / "older.ckpt")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    integ = flowint.Integrator(2, **SMALL)
    path = ckpt.save_checkpoint(integ, tmp_path / "a.ckpt")
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise KeyboardInterrupt  # interrupted in the middle of writing

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(integ, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_checkpoint_every(tmp_path, monkeypatch):
    saves = []
    real = ckpt.save_checkpoint
    monkeypatch.setattr(ckpt, "save_checkpoint", lambda i, p: saves.append(len(i.history)) or
                        real(i, p))
    r = flowint.integrate(gauss, 2, budget=6000, n_train=4000, checkpoint=tmp_path / "c",
                          checkpoint_every=3, **SMALL)
    # 8 training iterations: saves after 3, 6 and the last; then every 3 final iterations
    # and after the last.
    total = len(r.history)
    assert total > 8 and saves == [3, 6, 8, *range(11, total, 3), total]


def test_ctrl_c_then_resume_gives_the_uninterrupted_result(tmp_path):
    run = dict(budget=8000, n_train=5000, **SMALL)
    reference = flowint.integrate(gauss, 2, **run)
    path = tmp_path / "run.ckpt"
    # 10 training iterations of 500 points, then final ones: Ctrl-C in the 7th iteration,
    # then in the 14th (a final one).
    assert len(reference.history) > 14
    for at in (7, 8):
        with pytest.raises(KeyboardInterrupt):
            flowint.integrate(CtrlC(at), 2, checkpoint=path, **run)
    state = ckpt.read_checkpoint(path)["state"]
    assert len(state["history"]) == 13
    counter = CountCalls()
    resumed = flowint.integrate(counter, 2, checkpoint=path, **run)
    assert exact(resumed) == exact(reference)
    assert counter.points == reference.n_evals - state["n_evals"]  # only what was not done

    # Running the finished job again returns the stored result, evaluating nothing.
    counter = CountCalls()
    assert exact(flowint.integrate(counter, 2, checkpoint=path, **run)) == exact(reference)
    assert counter.calls == 0


def test_standalone_train_resumes(tmp_path):
    reference = flowint.Integrator(2, **SMALL)
    reference.train(gauss, 3500, early_stop=False)
    path = tmp_path / "t.ckpt"
    with pytest.raises(KeyboardInterrupt):
        flowint.Integrator(2, checkpoint=path, **SMALL).train(CtrlC(5), 3500)
    integ = flowint.Integrator(2, checkpoint=path, **SMALL)
    assert integ.n_evals == 2000
    done = integ.train(gauss, 3500)
    assert len(done) == 7 and records(integ.history) == records(reference.history)
    assert all(torch.equal(a, b) for a, b in zip(integ.flow.state_dict().values(),
                                                 reference.flow.state_dict().values(),
                                                 strict=True))


def test_checkpoint_of_another_problem_is_refused(tmp_path):
    path = ckpt.save_checkpoint(flowint.Integrator(2, **SMALL), tmp_path / "a.ckpt")
    with pytest.raises(ValueError, match="dim"):
        flowint.Integrator(3, checkpoint=path, **SMALL)
    with pytest.raises(ValueError, match="bounds"):
        flowint.Integrator(2, [(0, 2), (0, 1)], checkpoint=path, **SMALL)
    with pytest.raises(ValueError, match="another flow"):
        flowint.Integrator(2, checkpoint=path, **{**SMALL, "flow_options": {"hidden": 9}})
    with pytest.warns(RuntimeWarning, match="loss"):
        flowint.Integrator(2, checkpoint=path, **{**SMALL, "loss": "kl"})
    bad = tmp_path / "bad.ckpt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(ValueError, match="not a flowint checkpoint"):
        ckpt.read_checkpoint(bad)


def test_lr_final_none_resumes_a_checkpoint_of_the_old_default_quietly(tmp_path):
    """A checkpoint holding ``lr_final=0.1`` (written before ``None``, read as 0.1, was the
    default) resumes under the default without a warning; another rate still warns."""
    path = ckpt.save_checkpoint(flowint.Integrator(2, **{**SMALL, "lr_final": 0.1}),
                                tmp_path / "a.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        flowint.Integrator(2, checkpoint=path, **SMALL)
    with pytest.warns(RuntimeWarning, match="lr_final"):
        flowint.Integrator(2, checkpoint=path, **{**SMALL, "lr_final": 0.5})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_checkpoint_loads_on_cpu(tmp_path):
    integ = flowint.Integrator(2, device="cuda", **SMALL)
    integ.train(gauss, 2000)
    path = ckpt.save_checkpoint(integ, tmp_path / "a.ckpt")
    with pytest.warns(RuntimeWarning, match="random stream"):
        again = flowint.load_checkpoint(path, device="cpu")
    assert records(again.history) == records(integ.history)
    assert all(v.device.type == "cpu" for v in again.flow.state_dict().values())


# ----------------------------------------------------------------- a killed process
# 12 training and 6 final iterations (plain Monte Carlo in the final phase: fewer, larger
# iterations than the default quasi-random randomizations, whose resumption the in-process
# Ctrl-C test covers).
RUN = dict(budget=9000, n_train=6000, qmc=False, **SMALL)

JOB = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import flowint
from _slow_integrands import CountCalls, gauss


def summary(r, f=None):
    return {{"mean": r.mean.hex(), "sdev": r.sdev.hex(), "n_evals": r.n_evals,
            "points": f.points if f else None, "history": [h.mean.hex() for h in r.history]}}


out = {{}}
if sys.argv[2] == "restart":  # first the uninterrupted reference, while the job runs
    out["reference"] = summary(flowint.integrate(gauss, 2, **{run!r}))
else:
    flowint.Integrator(1)  # torch's one-time initialisation
sys.stdin.readline()  # wait for the go
f = CountCalls(per_call=0.03)
out["run"] = summary(flowint.integrate(f, 2, checkpoint=sys.argv[1], **{run!r}), f)
print(json.dumps(out))
"""


def _start(script: Path, path: Path, mode: str) -> subprocess.Popen:
    """Start the job; it prepares, then waits for a line on stdin before integrating."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(path), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _go(proc: subprocess.Popen) -> None:
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_sigkill_then_restart_gives_the_uninterrupted_result_bit_for_bit(tmp_path):
    """A job is SIGKILLed in training; a fresh process resumes it from the checkpoint.

    The second process is started at once: it computes the uninterrupted reference run (same
    settings, one thread, as the job) while the job runs, then waits until the job was killed
    before it resumes from the checkpoint.
    """
    script = tmp_path / "job.py"
    script.write_text(JOB.format(tests=str(HERE), run=RUN))
    path = tmp_path / "job.ckpt"
    job = _start(script, path, "job")
    restart = _start(script, path, "restart")
    _go(job)

    deadline = time.monotonic() + 120
    while job.poll() is None and time.monotonic() < deadline:
        if path.exists() and len(ckpt.read_checkpoint(path)["state"]["history"]) >= 5:
            break
        time.sleep(0.02)
    assert job.poll() is None, "the job ended before it could be killed"
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)
    assert job.returncode == -signal.SIGKILL
    state = ckpt.read_checkpoint(path)["state"]
    done = state["n_evals"]
    assert 2500 <= done < 6000  # killed in training, with completed iterations saved

    _go(restart)
    out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    reference, resumed = result["reference"], result["run"]
    # Completed iterations kept, none evaluated twice.
    assert resumed["n_evals"] == reference["n_evals"]
    assert resumed["points"] == reference["n_evals"] - done
    assert resumed["history"][:len(state["history"])] == [h[2].hex() for h in state["history"]]
    # Bit for bit the uninterrupted run.
    assert resumed["history"] == reference["history"]
    assert (resumed["mean"], resumed["sdev"]) == (reference["mean"], reference["sdev"])
