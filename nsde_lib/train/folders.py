"""Files on disk that must survive a crash: atomic JSON and checkpoints, append-only JSONL with
torn-line recovery, and the rule that a folder holding results is never overwritten.

Run folders (:mod:`nsde_lib.train.runs`), sweep folders (:mod:`nsde_lib.train.sweep_runs`) and
the run store (:mod:`nsde_lib.train.store`) all write through these helpers.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch

from ..runtime import pick_device

__all__ = ["RunFolderError", "write_json", "append_line", "read_jsonl", "rewrite_jsonl",
           "refuse_overwrite", "save_checkpoint", "load_checkpoint", "first_line"]


class RunFolderError(RuntimeError):
    """A file of a run folder cannot be read (truncated, empty, or not written by this library).

    The message names the file and what to do; nothing in the folder is changed or deleted.
    The command line reports it with its own exit status (3).
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (``"no detail"`` if it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else "no detail"


def write_json(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON to a temporary file, then rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def append_line(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` as one JSON line and fsync: a crash loses at most this line, torn."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """The records of a JSONL file written by :func:`append_line`, and its torn last line.

    A process killed while appending leaves a torn last line: it is returned (as the second
    item, a list of at most one line) instead of a record. A bad line anywhere else means the
    file was damaged otherwise. A missing file has no records.

    Raises:
        RunFolderError: a line before the last one is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        return [], []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records, torn = [], []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            records.append(record)
        except ValueError as err:
            if i < len(lines) - 1:
                raise RunFolderError(
                    f"{path}, line {i + 1}, cannot be read ({first_line(err)}); only a torn last "
                    f"line is recovered automatically. Nothing was changed. Repair or remove "
                    f"that line, then run the command again") from None
            torn.append(line)
    return records, torn


def rewrite_jsonl(path: str | os.PathLike, keep: list[dict], dropped: list[str]) -> None:
    """Rewrite ``path`` to hold ``keep``; the ``dropped`` raw lines (a torn line, the lines of
    epochs that will be trained again) are appended to ``<path>.dropped`` first, so nothing
    that was written is lost."""
    path = Path(path)
    if dropped:
        with open(path.with_name(path.name + ".dropped"), "a") as f:
            f.write("".join(line + "\n" for line in dropped))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


def refuse_overwrite(out: str | os.PathLike, what: str, held: str = "files") -> None:
    """Raise ``FileExistsError`` if ``out`` exists and is not an empty folder.

    Args:
        out: the folder a new run or sweep would write.
        what: ``"a run"`` or ``"a sweep"`` (for the message).
        held: what the folder holds, in words.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and holds {held}; {what} is never "
                              f"overwritten. Continue it with --resume, or choose another --out")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact (rename is atomic on POSIX).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, device="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code from the file).

    Raises:
        RunFolderError: the file is truncated, empty or not a torch file (the message names it
            and says what to do).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location=pick_device(device), weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch.load fails in many ways on a bad file)
        reason = ("a weights-only load refused the Python objects in it"
                  if isinstance(err, pickle.UnpicklingError)
                  else f"{type(err).__name__}: {first_line(err)}")
        raise RunFolderError(
            f"{path} cannot be read ({reason}): it is truncated, empty or not a checkpoint of "
            f"this course. Nothing was changed. Move it aside (e.g. rename it to "
            f"{path.name}.bad) to train the run again from its first epoch with --resume, or "
            f"restore it from a copy") from None
    return payload
