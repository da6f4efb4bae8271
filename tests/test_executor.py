"""Distributed evaluation: executors, factories, killed workers and resubmission.

The contract under test: evaluating through an executor gives *exactly* the result of the serial
evaluation with the same seed, also when a worker dies in the middle of a chunk (the chunk is
resubmitted, results are put back in order).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import torch
from _slow_integrands import CountCalls, KillOnce, always_kill, gauss, gauss_exact, raises

import flowint
from flowint import Integrand, IntegrandError

#: A tiny integration: 4 warm-up + 4 final iterations of 1000 points, in chunks of 250.
RUN = dict(budget=8000, n_train=4000, seed=0, batch_size=1000, progress=False,
           backend="numpy", max_batch=250, flow_options={"hidden": 8})


@pytest.fixture(scope="module")
def serial() -> flowint.Result:
    return flowint.integrate(gauss, 2, **RUN)


@pytest.fixture(scope="module")
def forkserver():
    """A forkserver context: safe in a process with threads (fork is not), cheap workers."""
    return multiprocessing.get_context("forkserver")


def same(a: flowint.Result, b: flowint.Result) -> bool:
    return (a.mean, a.sdev, a.n_evals) == (b.mean, b.sdev, b.n_evals)


class FlakyPool:
    """An executor whose first ``n_broken`` submissions fail as if the pool broke."""

    def __init__(self, n_broken: int = 0, error: type[BaseException] = BrokenExecutor):
        self.n_broken = n_broken
        self.error = error
        self.submitted = 0
        self.shut = False

    def submit(self, fn, *args):
        self.submitted += 1
        fut: Future = Future()
        if self.n_broken > 0:
            self.n_broken -= 1
            fut.set_exception(self.error("worker died"))
        else:
            try:
                fut.set_result(fn(*args))
            except Exception as exc:
                fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.shut = True


def test_serial_reference_is_right(serial):
    assert abs(serial.pull(gauss_exact(2))) < 5


def test_thread_pool_gives_the_serial_result(serial):
    with ThreadPoolExecutor(2) as pool:
        assert same(flowint.integrate(gauss, 2, executor=pool, **RUN), serial)


def test_factory_is_called_once_and_reused(serial):
    made: list[ThreadPoolExecutor] = []

    def factory() -> ThreadPoolExecutor:
        made.append(ThreadPoolExecutor(2))
        return made[-1]

    assert same(flowint.integrate(gauss, 2, executor=factory, **RUN), serial)
    assert len(made) == 1
    made[0].shutdown()


def test_a_class_is_taken_as_a_factory():
    f = Integrand(gauss, 2, executor=ThreadPoolExecutor, max_batch=10)
    u = torch.rand(35, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(f(u), torch.as_tensor(gauss(u.numpy())))
    f.close()


def test_worker_failures_are_resubmitted_in_order():
    pool = FlakyPool(n_broken=1, error=type("KilledWorker", (Exception,), {}))
    f = Integrand(gauss, 2, executor=pool, max_batch=10, backend="numpy")
    u = torch.rand(35, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(f(u), torch.as_tensor(gauss(u.numpy())))
    assert pool.submitted == 5  # 4 chunks + 1 resubmission


def test_broken_pool_is_replaced_from_the_factory():
    pools = [FlakyPool(n_broken=3), FlakyPool()]  # chunk 3 finished before the pool broke
    made = iter(pools)
    f = Integrand(gauss, 2, executor=lambda: next(made), max_batch=10, backend="numpy")
    u = torch.rand(35, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(f(u), torch.as_tensor(gauss(u.numpy())))
    assert pools[0].shut and pools[1].submitted == 3  # the unfinished chunks moved over


def test_broken_pool_instance_asks_for_a_factory():
    f = Integrand(gauss, 2, executor=FlakyPool(n_broken=10), max_batch=10, backend="numpy")
    with pytest.raises(IntegrandError, match="factory"):
        f(torch.rand(35, 2, dtype=torch.float64))


def test_retries_are_bounded():
    pools = [FlakyPool(n_broken=100) for _ in range(5)]
    made = iter(pools)
    f = Integrand(gauss, 2, executor=lambda: next(made), max_batch=10, backend="numpy",
                  retries=2)
    with pytest.raises(IntegrandError, match="BrokenExecutor"):
        f(torch.rand(35, 2, dtype=torch.float64))
    assert sum(p.submitted > 0 for p in pools) == 3  # the first pool and two replacements


def test_errors_of_the_integrand_are_not_retried():
    pool = FlakyPool()
    f = Integrand(raises, 2, executor=pool, max_batch=10, backend="numpy")
    with pytest.raises(IntegrandError, match="integrand failure"):
        f(torch.rand(35, 2, dtype=torch.float64))
    assert pool.submitted == 4


def test_bad_executor_is_rejected():
    with pytest.raises(TypeError, match="submit"):
        Integrand(gauss, 2, executor=object())
    f = Integrand(gauss, 2, executor=lambda: object())
    with pytest.raises(TypeError, match="factory returned"):
        f(torch.rand(3, 2, dtype=torch.float64))


def test_workers_get_cpu_data_in_the_backend_convention():
    seen: list[type] = []

    def record(x):
        seen.append(type(x))
        return gauss(np.asarray(x))

    with ThreadPoolExecutor(1) as pool:
        Integrand(record, 2, executor=pool, backend="numpy")(torch.rand(4, 2))
        Integrand(lambda x: record(x) if seen.append(x.device) is None else None, 2,
                  executor=pool, backend="torch")(torch.rand(4, 2))
    assert seen[0] is np.ndarray and seen[1] == torch.device("cpu")


def test_process_pool_factory_survives_a_killed_worker(serial, forkserver, tmp_path):
    marker = tmp_path / "killed"
    factory = functools.partial(ProcessPoolExecutor, 2, mp_context=forkserver)
    result = flowint.integrate(KillOnce(marker, delay=0.05), 2, executor=factory, **RUN)
    assert marker.exists(), "no worker was killed"
    assert same(result, serial)


def test_process_pool_instance_broken_by_a_kill_is_a_clear_error(forkserver, tmp_path):
    with ProcessPoolExecutor(2, mp_context=forkserver) as pool:
        with pytest.raises(IntegrandError, match="factory"):
            flowint.integrate(KillOnce(tmp_path / "killed"), 2, executor=pool, **RUN)


def test_process_pool_gives_up_on_a_chunk_that_always_kills(forkserver):
    factory = functools.partial(ProcessPoolExecutor, 1, mp_context=forkserver)
    f = Integrand(always_kill, 2, executor=factory, backend="numpy", retries=1)
    with pytest.raises(IntegrandError, match="BrokenProcessPool"):
        f(torch.rand(5, 2, dtype=torch.float64))
    f.close()


def test_counts_are_those_of_the_parent():
    counter = CountCalls()
    with ThreadPoolExecutor(2) as pool:
        f = Integrand(counter, 2, executor=pool, max_batch=100, backend="numpy")
        f(torch.rand(1000, 2, dtype=torch.float64))
    assert counter.calls == 10 and counter.points == 1000 and f.n_evals == 1000


@pytest.fixture(scope="module")
def dask_client():
    """Two single-threaded worker processes on loopback, started by the test itself.

    ``allowed-failures = 0`` makes the scheduler give up on a task at the first worker death
    (``KilledWorker``) instead of rerunning it itself, so the tests exercise flowint's own
    resubmission.
    """
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def _pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_dask_client_gives_the_serial_result(serial, dask_client):
    assert same(flowint.integrate(gauss, 2, executor=dask_client, **RUN), serial)


def test_dask_worker_killed_mid_evaluation(serial, dask_client, tmp_path):
    """A worker dies 50 ms into a chunk: the chunk is resubmitted, nothing else changes."""
    marker = tmp_path / "killed"
    before = _pids(dask_client)
    result = flowint.integrate(KillOnce(marker, delay=0.05), 2,
                               executor=dask_client.get_executor(), **RUN)
    assert marker.exists(), "no worker was killed"
    assert same(result, serial)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker
    assert _pids(dask_client) != before
