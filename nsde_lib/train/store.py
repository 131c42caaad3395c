"""The run store: a finished training is kept, and the same request loads it instead of training.

An entry is keyed by everything that determines the trained model: the full
:class:`~nsde_lib.train.config.RunConfig` (seed included), a hash of the library's own training
code, the torch version, the device type and the precision (what hooks recorded during training
is kept in the entry, see :func:`nsde_lib.train_model`).
Any change to one of them is another key, so a stored model is never served for a request it
does not answer. What the key leaves out, on purpose: the CPU's instruction set and thread count
(they move the last bits of a result, not the experiment), the library's comments and docstrings
and the course's figures and prose (``nsde_lib/course``, ``cli.py``): they do not touch training.

Layout (``runs/store/`` by default; ``NSDE_STORE=/path`` moves it, ``NSDE_STORE=off`` switches it
off)::

    runs/store/ab/<key>/run.pt      # weights_only checkpoint: model, optimizer, rng, records
    runs/store/ab/<key>/meta.json   # the request, the history, when, where, how long
    runs/store/.incoming/           # saves in progress (never read)

A save writes both files into ``.incoming/`` and then renames the folder into place, one atomic
step: a save killed half-way leaves only a folder in ``.incoming/``, which no lookup reads. A
folder in place that cannot be read is moved aside (``<key>.bad-<time>``), never deleted, and
the model is trained again. ``pack``/``unpack`` move a store between machines as one file.

Why not ``joblib.Memory`` or ``jupyter-cache``: joblib keys a call by its pickled arguments and
the source of the one function it wraps (not the library code that function calls) and loads
results with pickle, which runs code; jupyter-cache caches whole notebook executions, so one
edited cell re-runs every training in the chapter, and it cannot share one model between
chapters 04, 05 and 06 or with the command line. Here the key is explicit, the files are
weights-only, and one store serves the notebooks, ``train`` and ``sweep`` alike.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import shutil
import tarfile
import time
import uuid
import warnings
from pathlib import Path

import torch

from .folders import first_line, write_json

__all__ = ["RunStore", "open_store", "default_store_root", "library_hash", "STORE_ENV"]

STORE_ENV = "NSDE_STORE"
OFF = ("off", "0", "false", "no", "none")
FORMAT = 1
ENTRY, META, INCOMING = "run.pt", "meta.json", ".incoming"
# The code whose change can change a trained model; the course's figures and prose cannot.
TRAINING_CODE = ("checks.py", "runtime.py", "models", "sde", "theory", "train", "robust")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_MEMBER = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{64})/(run\.pt|meta\.json)$")


def library_hash(package: str | os.PathLike | None = None) -> str:
    """SHA-256 of the library's training code (see :data:`TRAINING_CODE`): every ``.py`` file
    under those paths of ``package`` (default: this ``nsde_lib``), by relative path and code
    (its syntax tree: comments and docstrings do not count).
    """
    if package is None:
        return _own_hash()
    return _hash_of(Path(package))


@functools.lru_cache(maxsize=1)
def _own_hash() -> str:
    return _hash_of(Path(__file__).resolve().parents[1])


def _hash_of(package: Path) -> str:
    digest = hashlib.sha256()
    for part in TRAINING_CODE:
        path = package / part
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            digest.update(str(file.relative_to(package)).encode() + b"\0")
            digest.update(_code_of(file.read_text()).encode() + b"\0")
    return digest.hexdigest()


def _code_of(source: str) -> str:
    """What a module computes: its syntax tree without docstrings (comments are not in it), so
    that editing prose does not retrain anything and editing one line of code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        documented = isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
        if documented and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def default_store_root() -> Path | None:
    """Where the store lives: ``$NSDE_STORE`` (``off`` for no store), else ``runs/store`` in the
    project folder (the one holding ``pyproject.toml`` beside the package), else
    ``~/.cache/nsde_lib/store`` for an installed copy."""
    env = os.environ.get(STORE_ENV, "").strip()
    if env.lower() in OFF:
        return None
    if env:
        return Path(env).expanduser()
    project = Path(__file__).resolve().parents[2]
    if (project / "pyproject.toml").is_file():
        return project / "runs" / "store"
    return Path.home() / ".cache" / "nsde_lib" / "store"


def open_store(store="auto") -> "RunStore | None":
    """The store a call asks for: ``"auto"`` (the default: :func:`default_store_root`), ``None``
    or ``False`` (none), a path, or a :class:`RunStore`.

    Raises:
        TypeError: anything else.
    """
    if isinstance(store, RunStore):
        return store
    if store == "auto":
        root = default_store_root()
        return None if root is None else RunStore(root)
    if store is None or store is False:
        return None
    if isinstance(store, (str, os.PathLike)):
        return RunStore(store)
    raise TypeError(f"store must be 'auto', None/False, a path or a RunStore, got {store!r}")


class RunStore:
    """A folder of finished trainings, each under the key of its request.

    Args:
        root: the store's folder (created on the first save).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @staticmethod
    def key(request: dict) -> str:
        """The SHA-256 of ``request`` as canonical JSON (sorted keys): same request, same key."""
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=repr)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"key must be 64 hex digits, got {key!r}")
        return self.root / key[:2] / key

    def get(self, key: str, device="cpu") -> tuple[dict, dict] | None:
        """``(payload, meta)`` of the entry ``key``, or ``None`` if there is none.

        The payload is read with ``weights_only=True``. An entry that cannot be read (a file
        edited or cut short after it was saved) is moved aside with a warning and ``None`` is
        returned, so the model is trained again.
        """
        folder = self.path(key)
        if not folder.is_dir():
            return None
        try:
            meta = json.loads((folder / META).read_text())
            if meta.get("key") != key or meta.get("format") != FORMAT:
                raise ValueError("its meta.json belongs to another key or format")
            payload = torch.load(folder / ENTRY, map_location=device, weights_only=True)
            if not isinstance(payload, dict) or "model" not in payload:
                raise ValueError("run.pt holds no model")
        except Exception as err:  # noqa: BLE001 (a damaged entry is retrained, never served)
            aside = folder.with_name(f"{key}.bad-{int(time.time())}")
            folder.rename(aside)
            warnings.warn(f"run store entry {folder} cannot be read ({type(err).__name__}: "
                          f"{first_line(err)}); moved it to {aside.name} and training again",
                          stacklevel=2)
            return None
        return payload, meta

    def put(self, key: str, payload: dict, meta: dict, *, replace: bool = False) -> Path:
        """Save an entry: both files into ``.incoming/``, fsync, then one rename into place.

        If another process saved the same key meanwhile, its entry is kept (same request, same
        training) and this one is discarded, unless ``replace`` (the new entry holds more
        records of the same training): the old one is then moved out and the new one renamed
        in. Returns the entry's folder.
        """
        folder = self.path(key)
        incoming = self.root / INCOMING / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        incoming.mkdir(parents=True)
        try:
            with open(incoming / ENTRY, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            write_json(incoming / META, {**meta, "key": key, "format": FORMAT})
            folder.parent.mkdir(parents=True, exist_ok=True)
            old = incoming.with_name(incoming.name + ".old")
            if replace and folder.is_dir():
                os.rename(folder, old)
            try:
                os.rename(incoming, folder)  # atomic; fails if the folder exists
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.rmtree(incoming.with_name(incoming.name + ".old"), ignore_errors=True)
        return folder

    def keys(self) -> list[str]:
        """The keys of the complete entries."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.glob("??/*") if _KEY.match(p.name)
                      and (p / META).is_file() and (p / ENTRY).is_file())

    def metas(self) -> list[dict]:
        """The ``meta.json`` of every complete entry."""
        return [json.loads((self.path(k) / META).read_text()) for k in self.keys()]

    def pack(self, file: str | os.PathLike) -> int:
        """Write every complete entry into one ``.tar.gz`` file; returns how many.

        Raises:
            FileExistsError: ``file`` exists (it is never overwritten).
        """
        file = Path(file)
        if file.exists():
            raise FileExistsError(f"{file} already exists; a pack is never overwritten: choose "
                                  f"another file name")
        keys = self.keys()
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                for key in keys:
                    for name in (META, ENTRY):
                        tar.add(self.path(key) / name, arcname=f"{key[:2]}/{key}/{name}")
            os.replace(tmp, file)
        finally:
            tmp.unlink(missing_ok=True)
        return len(keys)

    def unpack(self, file: str | os.PathLike) -> tuple[int, int]:
        """Add the entries of a pack to this store; returns ``(added, already here)``.

        Each entry goes in through ``.incoming/`` and one rename, like :meth:`put`; entries the
        store already has are kept as they are. Only files named like an entry are read.

        Raises:
            FileNotFoundError: no such file. ValueError: not a pack of this store.
        """
        file = Path(file)
        if not file.is_file():
            raise FileNotFoundError(f"no store pack at {file}")
        try:
            tar = tarfile.open(file, "r:gz")
        except (tarfile.TarError, OSError) as err:
            raise ValueError(f"{file} is not a store pack (a .tar.gz from `python -m nsde_lib "
                             f"store pack`): {first_line(err)}") from None
        added = present = 0
        with tar:
            members: dict[str, dict] = {}
            for member in tar.getmembers():
                match = _MEMBER.match(member.name)
                if not member.isfile() or not match or match[1] != match[2][:2]:
                    raise ValueError(f"{file} holds {member.name!r}, which is not a store entry "
                                     f"file; nothing was added")
                members.setdefault(match[2], {})[match[3]] = member
            for key, files in members.items():
                if set(files) != {META, ENTRY}:
                    raise ValueError(f"{file}: entry {key} is incomplete; nothing more was added")
                if self.path(key).is_dir():
                    present += 1
                    continue
                incoming = self.root / INCOMING / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
                incoming.mkdir(parents=True)
                try:
                    for name, member in files.items():
                        with tar.extractfile(member) as src, open(incoming / name, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                    self.path(key).parent.mkdir(parents=True, exist_ok=True)
                    os.rename(incoming, self.path(key))
                    added += 1
                finally:
                    shutil.rmtree(incoming, ignore_errors=True)
        return added, present
