"""Checkpoints: save the whole integrator to a file, and resume an interrupted run exactly.

A checkpoint holds everything an :class:`~flowint.Integrator` needs to continue as if it had
never stopped: the flow and optimizer, the history and counters, the random generator's state,
the training buffer, and where the current call stood (the training iteration, the weights of
the final iterations done so far). Files are written atomically (a temporary file in the same
folder, then ``os.replace``), so a kill at any moment leaves either the previous checkpoint or
the new one, never a torn file; they hold plain tensors and containers only and are read with
``torch.load(..., weights_only=True)``.

Automatic checkpoints: pass ``checkpoint=path`` (and ``checkpoint_every=k``, default 1) to
:class:`~flowint.Integrator` or :func:`~flowint.integrate`. The integrator then writes the file
after every ``k`` completed iterations and at the end of each phase, and, when the file already
exists, resumes from it on construction. Re-running the same script after a crash or a Ctrl-C
therefore continues where it stopped and returns bit for bit the result of an uninterrupted run
with the same seed (on the same device, library versions and thread settings); re-running it
after it finished returns the stored result without evaluating the integrand again. With
``k > 1`` an interruption loses at most ``k - 1`` completed iterations.

Resumption follows *one* call per file: a script that makes several integration calls on one
integrator should give each its own checkpoint file (or save and load explicitly with
:func:`save_checkpoint` and :func:`load_checkpoint`).

Example:
    >>> result = flowint.integrate(f, 8, budget=10**7, seed=1, checkpoint="run.ckpt")
    >>> integ = flowint.checkpoint.load_checkpoint("run.ckpt")   # later, for sampling
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ._io import load_plain
from .flows import build_flow

if TYPE_CHECKING:  # pragma: no cover
    from .integrator import Integrator

__all__ = ["FORMAT", "checkpoint_state", "load_checkpoint", "read_checkpoint", "resume",
           "save_checkpoint"]

#: The ``format`` tag of checkpoint files.
FORMAT = "flowint.checkpoint/1"

# Settings whose change between the interrupted run and the resumed one cannot alter results.
_HARMLESS = {"progress", "executor", "checkpoint", "checkpoint_every", "device", "max_batch",
             "seed", "flow", "lr"}


# ---------------------------------------------------------------------------- files
def checkpoint_state(integ: Integrator) -> dict[str, Any]:
    """Everything a checkpoint file stores, as plain CPU tensors and containers.

    Arguments:
        integ: the integrator.

    Returns:
        ``{"format", "integrator", "run", "buffer", "rng_device"}``: the integrator's
        :meth:`~flowint.Integrator.state_dict`, the progress of the call in flight, the training
        buffer of evaluated batches, and the device type the generator state belongs to.
    """
    state = {
        "format": FORMAT,
        "integrator": integ.state_dict(),
        "run": _run(integ),
        "buffer": [list(b) for b in getattr(integ, "_buffer", [])],
        "rng_device": integ.generator.device.type,
    }
    return _to_cpu(state)


def save_checkpoint(integ: Integrator, path: str | os.PathLike) -> Path:
    """Write ``integ``'s checkpoint to ``path`` atomically.

    The data go to a temporary file in the same folder, are flushed to disk, and the file is
    then renamed over ``path`` (``os.replace``), so readers and later runs only ever see a
    complete checkpoint, even when the process is killed while writing.

    Arguments:
        integ: the integrator.
        path: the checkpoint file (its folder is created if needed).

    Returns:
        The path written, as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = checkpoint_state(integ)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file with ``torch.load(..., weights_only=True)`` onto the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a flowint checkpoint.
    """
    return load_plain(path, FORMAT, "flowint checkpoint")


def resume(integ: Integrator, path: str | os.PathLike) -> bool:
    """Load the checkpoint at ``path`` into ``integ``, if the file exists.

    The integrator must describe the same problem: same dimension, box and flow architecture
    (a :class:`ValueError` otherwise). Settings that change the computation (loss, batch size,
    ...) and differ from the checkpoint's trigger a warning, since the continued run can then
    no longer match the uninterrupted one.

    Arguments:
        integ: a freshly built integrator.
        path: the checkpoint file.

    Returns:
        ``True`` if a checkpoint was loaded, ``False`` if there was none.
    """
    if not Path(path).exists():
        return False
    blob = read_checkpoint(path)
    state = dict(blob["integrator"])
    _check_compatible(integ, state, path)
    if blob.get("rng_device") != integ.generator.device.type:
        warnings.warn(f"{path} was written on {blob.get('rng_device')}, this run uses "
                      f"{integ.generator.device.type}: the random stream is re-derived from it, "
                      "so the continued run differs from an uninterrupted one",
                      RuntimeWarning, stacklevel=3)
        cpu = torch.Generator()
        if blob.get("rng_device") == "cpu":
            cpu.set_state(state["rng"])
        else:
            cpu.manual_seed(int(state["rng"][:8].view(torch.int64)[0]) & (2**62 - 1))
        seed = int(torch.randint(0, 2**62, (1,), generator=cpu))
        state["rng"] = torch.Generator(integ.generator.device).manual_seed(seed).get_state()
    integ.load_state_dict(state)
    integ.settings["lr"] = float(state["settings"].get("lr", integ.settings["lr"]))
    device = integ.device
    integ._run = _to_device(blob.get("run") or {}, device)
    if hasattr(integ, "_buffer"):
        integ._buffer = [tuple(_to_device(b, device)) for b in blob.get("buffer", [])]
    return True


def load_checkpoint(path: str | os.PathLike, **settings: Any) -> Integrator:
    """Rebuild an integrator from a checkpoint file.

    Arguments:
        path: the checkpoint file.
        **settings: settings to change (``device``, ``executor``, ``progress``, ...); a flow
            built without a registered recipe must be passed again as ``flow``. Automatic
            checkpoints are off unless ``checkpoint`` is given here.

    Returns:
        The integrator, with flow, optimizer, history, counters and random state restored.

    Example:
        >>> integ = load_checkpoint("run.ckpt", device="cuda")
        >>> x, w = integ.sample(10_000)
    """
    from .integrator import DEFAULTS, Integrator

    blob = read_checkpoint(path)
    state = blob["integrator"]
    saved = {k: v for k, v in state["settings"].items() if k in DEFAULTS}
    for key in ("dtype", "estimate_dtype"):
        if isinstance(saved.get(key), str):
            saved[key] = getattr(torch, saved[key])
    if "flow" not in settings:
        if state.get("flow_config") is None:
            raise ValueError(f"{path} holds a flow without a recipe: pass it as flow=...")
        saved["flow"] = build_flow(state["flow_config"])
    target = settings.pop("checkpoint", None)
    saved.update(settings)
    saved["checkpoint"] = None
    integ = Integrator(int(state["dim"]), state["bounds"], **saved)
    resume(integ, path)
    integ.settings["checkpoint"] = target
    return integ


# ---------------------------------------------------------------------------- loop hooks
def loop(integ: Integrator, kind: str, key: dict[str, Any], **fresh: Any) -> dict[str, Any]:
    """The progress record of a loop of ``integ`` (``"call"``, ``"train"`` or ``"final"``).

    A loop restored from a checkpoint is continued when it was started with the same
    arguments ``key``; otherwise a fresh record ``{"key", "done": False, **fresh}`` replaces
    it (a new call also discards the records of the previous call's loops).

    Arguments:
        integ: the integrator.
        kind: which loop.
        key: the arguments that identify the loop (budget, tolerances, ...).
        **fresh: the loop's initial position.

    Returns:
        The record, which the loop reads its position from and :func:`step` updates.
    """
    run = _run(integ)
    entry = run.get(kind)
    if entry is not None and entry["key"] == key:
        return entry
    if kind == "call":
        if entry is not None and integ.settings.get("checkpoint") is not None:
            warnings.warn("the checkpoint holds an unfinished call with other arguments "
                          f"({entry['key']}); starting this call from its state instead",
                          RuntimeWarning, stacklevel=3)
        run.clear()
    entry = run[kind] = {"key": dict(key), "done": False, **fresh}
    return entry


def step(integ: Integrator, kind: str, **progress: Any) -> None:
    """Record a completed iteration of loop ``kind``, and write a checkpoint when one is due.

    A checkpoint is due every ``checkpoint_every`` iterations and when a loop finishes
    (``done=True``), if the ``checkpoint`` setting is a path.
    """
    _run(integ)[kind].update(progress)
    path = integ.settings.get("checkpoint")
    if path is None:
        return
    count = integ.__dict__.get("_since_checkpoint", 0) + 1
    every = max(1, int(integ.settings.get("checkpoint_every") or 1))
    if progress.get("done") or count >= every:
        save_checkpoint(integ, path)
        count = 0
    integ._since_checkpoint = count


def loop_end(integ: Integrator, kind: str) -> None:
    """Forget a finished loop (kept while the call around it is in flight, for resumption)."""
    run = _run(integ)
    if kind == "call":
        run.clear()
    elif "call" not in run:
        run.pop(kind, None)


# ---------------------------------------------------------------------------- helpers
def _run(integ: Integrator) -> dict[str, Any]:
    return integ.__dict__.setdefault("_run", {})


def _check_compatible(integ: Integrator, state: dict[str, Any], path: Any) -> None:
    if int(state["dim"]) != integ.dim:
        raise ValueError(f"{path} is a checkpoint in dim {state['dim']}, not {integ.dim}")
    mine = integ.state_dict()
    if state.get("bounds") != mine["bounds"]:
        raise ValueError(f"{path} was written for bounds {state.get('bounds')}, not "
                         f"{mine['bounds']}")
    if _flow_key(state.get("flow_config")) != _flow_key(integ.flow.config):
        raise ValueError(f"{path} was written for another flow ({state.get('flow_config')}); "
                         "delete it or pass the same flow settings")
    changed = sorted(k for k, v in state["settings"].items()
                     if k not in _HARMLESS and k in mine["settings"] and mine["settings"][k] != v)
    if changed:
        warnings.warn(f"settings {changed} differ from those of {path}: the continued run "
                      "will not match an uninterrupted one", RuntimeWarning, stacklevel=4)


def _flow_key(config: dict[str, Any] | None) -> Any:
    """A flow recipe without its initialisation seed (irrelevant once parameters are loaded)."""
    if not config:
        return config
    kwargs = dict(config.get("kwargs", {}))
    if kwargs.get("masks") != "random":
        kwargs.pop("seed", None)
    return {**config, "kwargs": kwargs}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
