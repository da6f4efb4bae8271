"""Reading flowint's torch files safely (``weights_only=True``, never arbitrary pickles)."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["load_plain"]


def load_plain(path: str | os.PathLike, fmt: str | tuple[str, ...],
               what: str) -> dict[str, Any]:
    """Load a torch file of plain data onto the CPU and check its ``format`` tag.

    Arguments:
        path: the file.
        fmt: the expected value of the file's ``"format"`` entry (or a tuple of them).
        what: how errors name the expected kind of file (``"flowint checkpoint"``).

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
        ValueError: not a torch file of plain data, or not of format ``fmt``.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # not a torch file, or one holding more than plain data
        raise ValueError(f"{path} is not a {what} ({exc})") from exc
    accepted = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    if not isinstance(blob, dict) or blob.get("format") not in accepted:
        found = blob.get("format") if isinstance(blob, dict) else None
        raise ValueError(f"{path} is not a {what}" + (
            f" (format {found!r}; this version reads {', '.join(accepted)})"
            if isinstance(found, str) and found.split("/")[0] == accepted[0].split("/")[0]
            else ""))
    return blob
