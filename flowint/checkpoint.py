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
    >>> integ = flowint.load_checkpoint("run.ckpt")   # later, for sampling
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from ._io import load_plain
from .flows import Flow, build_flow
from .run.allocation import CHANNELS, SPLIT_NAMES
from .run.channels import part_lr_final
from .run.settings import LR_FINAL

__all__ = ["FORMAT", "checkpoint_state", "read_checkpoint", "resume", "save_checkpoint",
           "saved_flow", "saved_settings", "upgrade"]

#: The ``format`` tag of checkpoint files (and of ``Integrator.state_dict()``).
FORMAT = "flowint.checkpoint/3"

#: Older formats :func:`read_checkpoint` converts: ``/2`` kept the buffer's training targets
#: themselves (in units of ``exp(log_scale)``), ``/3`` keeps their logarithms.
_OLDER = ("flowint.checkpoint/2",)

# Settings whose change between the interrupted run and the resumed one cannot alter results.
_HARMLESS = {"progress", "executor", "checkpoint", "checkpoint_every", "device", "max_batch",
             "seed", "flow"}


def checkpoint_state(integ: Any) -> dict[str, Any]:
    """Everything a checkpoint file stores: ``integ.state_dict()`` (plain CPU data)."""
    return integ.state_dict()


def save_checkpoint(integ: Any, path: str | os.PathLike) -> Path:
    """Write ``integ``'s checkpoint to ``path`` atomically.

    The data go to a temporary file in the same folder, are flushed to disk, and the file is
    then renamed over ``path`` (``os.replace``), so readers and later runs only ever see a
    complete checkpoint, even when the process is killed while writing.

    Arguments:
        integ: the :class:`~flowint.Integrator`.
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
    return upgrade(load_plain(path, (FORMAT, *_OLDER), "flowint checkpoint"))


def upgrade(blob: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of an older format (:data:`_OLDER`) in the current one (others: as is).

    ``/2`` to ``/3``: the buffer's training targets replaced by their logarithms.
    """
    if not isinstance(blob, dict) or blob.get("format") != "flowint.checkpoint/2":
        return blob
    blob, state = dict(blob), dict(blob["state"])
    shift = state.get("log_scale") or 0.0
    state["buffer"] = [[u, torch.log(t.to(torch.float64)) + shift, q]
                       for u, t, q in state.get("buffer", [])]
    blob["state"], blob["format"] = state, FORMAT
    return blob


def resume(integ: Any, path: str | os.PathLike) -> bool:
    """Load the checkpoint at ``path`` into ``integ``, if the file exists.

    The integrator must describe the same problem: same dimension, box and flow architecture
    (a :class:`ValueError` otherwise). Settings that change the computation (loss, batch size,
    ...) and differ from the checkpoint's trigger a warning, since the continued run can then
    no longer match the uninterrupted one.

    Arguments:
        integ: a freshly built :class:`~flowint.Integrator`.
        path: the checkpoint file.

    Returns:
        ``True`` if a checkpoint was loaded, ``False`` if there was none.
    """
    if not Path(path).exists():
        return False
    blob = dict(read_checkpoint(path))
    _check_compatible(integ, blob, path)
    if blob.get("rng_device") != integ.generator.device.type:
        warnings.warn(f"{path} was written on {blob.get('rng_device')}, this run uses "
                      f"{integ.generator.device.type}: the random stream is re-derived from it, "
                      "so the continued run differs from an uninterrupted one",
                      RuntimeWarning, stacklevel=3)
        device = integ.generator.device
        blob["rng"] = _rederived(blob["rng"], blob.get("rng_device"), device)
        if blob.get("channels"):  # a split run's channels carry random states of their own
            blob["channels"] = {c: dict(ch, state=dict(ch["state"], rng=_rederived(
                ch["state"]["rng"], ch["state"].get("rng_device"), device)))
                for c, ch in blob["channels"].items()}
    integ.load_state_dict(blob)
    return True


def _rederived(rng: torch.Tensor, written_on: str | None, device: torch.device) -> torch.Tensor:
    """A generator state for ``device`` derived from one written on another device."""
    cpu = torch.Generator()
    if written_on == "cpu":
        cpu.set_state(rng)
    else:
        cpu.manual_seed(int(rng[:8].view(torch.int64)[0]) & (2**62 - 1))
    seed = int(torch.randint(0, 2**62, (1,), generator=cpu))
    return torch.Generator(device).manual_seed(seed).get_state()


def saved_settings(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings stored in a checkpoint (dtypes restored), and the whole file's data."""
    from .run.settings import DEFAULTS

    blob = read_checkpoint(path)
    saved = {k: v for k, v in blob["settings"].items() if k in DEFAULTS}
    for key in ("dtype", "estimate_dtype"):
        if isinstance(saved.get(key), str) and saved[key] != "auto":
            saved[key] = getattr(torch, saved[key])
    return saved, blob


def saved_flow(blob: dict[str, Any], path: Any) -> Flow:
    """A fresh flow of the checkpoint's recipe (its parameters are loaded by :func:`resume`)."""
    if blob.get("flow_config") is None:
        raise ValueError(f"{path} holds a flow without a recipe: pass it as flow=...")
    return build_flow(blob["flow_config"])


def _check_compatible(integ: Any, state: dict[str, Any], path: Any) -> None:
    if int(state["dim"]) != integ.dim:
        raise ValueError(f"{path} is a checkpoint in dim {state['dim']}, not {integ.dim}")
    mine = integ.state_dict()
    if state.get("bounds") != mine["bounds"]:
        raise ValueError(f"{path} was written for bounds {state.get('bounds')}, not "
                         f"{mine['bounds']}")
    if _flow_key(state.get("flow_config")) != _flow_key(integ.flow.config):
        raise ValueError(f"{path} was written for another flow ({state.get('flow_config')}); "
                         "delete it or pass the same flow settings")
    saved, now = _effective(state["settings"]), _effective(mine["settings"])
    changed = sorted(k for k, v in saved.items()
                     if k not in _HARMLESS and k in now and now[k] != v)
    parts = state.get("channels") or {}
    if set(CHANNELS) <= set(parts) <= set(SPLIT_NAMES) and "lr_final" not in changed:
        rate = part_lr_final(mine["settings"].get("lr_final"))
        if any(_effective(ch["state"]["settings"])["lr_final"] != rate
               for ch in parts.values()):
            changed.append("lr_final")
    if changed:
        warnings.warn(f"settings {changed} differ from those of {path}: the continued run "
                      "will not match an uninterrupted one", RuntimeWarning, stacklevel=4)


def _effective(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with ``lr_final=None`` read as the integrator's own :data:`LR_FINAL`
    (a checkpoint written before ``None`` was the default holds 0.1)."""
    if settings.get("lr_final", LR_FINAL) is None:
        return {**settings, "lr_final": LR_FINAL}
    return settings


def _flow_key(config: dict[str, Any] | None) -> Any:
    """A flow recipe without its initialisation seed (irrelevant once parameters are loaded)."""
    if not config:
        return config
    kwargs = dict(config.get("kwargs", {}))
    if kwargs.get("masks") != "random":
        kwargs.pop("seed", None)
    return {**config, "kwargs": kwargs}
