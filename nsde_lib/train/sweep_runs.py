"""Sweeps from a spec file: a grid of ``train`` runs on disk, one after another or on Ray Tune.

A spec is a TOML file (``sweeps/*.toml``)::

    [base]                  # train options every trial shares, under the CLI's names
    arch = "resnet"
    batch-size = 128
    [grid]                  # lists: the trials are their cartesian product
    depth = [2, 8]
    h = [1.0, 0.1]
    seed = [0, 1, 2]
    [[trials]]              # optional: explicit trials for coupled values, each crossed with
    noise = "additive"      # the grid (noise with its sigma); a list in one of them sweeps
    sigma = [0.1, 0.2]      # that option for that trial only (here: two trials)
    [resources]             # optional, for --engine ray (the CLI's flags override them)
    cpus-per-trial = 1
    gpus-per-trial = 0.25

Each option is set in one place (``[base]``, ``[grid]`` or the ``[[trials]]``). Every trial is
an ordinary run folder ``OUT/trials/<id>/`` of :func:`nsde_lib.train_run` (``eval`` accepts it;
the id names the values that vary, e.g. ``depth=8_h=0.1_seed=0``). ``OUT/sweep.json`` keeps
every trial's config, ``OUT/results.jsonl`` one line per finished trial:
``{"trial", "params", "metrics"}`` with the final epoch's metrics (a diverged trial is a result
too: ``"diverged": true``). :func:`read_results` turns those lines into the records of
:func:`nsde_lib.sweep`, so :func:`nsde_lib.summarize` and the chapters' figures take them as
they are.

Nothing is overwritten: a sweep folder that exists is resumed (``resume=True``, same spec: only
unfinished trials run, each from its last checkpoint) or refused. Every trial's config is
validated before the first trial starts; a bad spec is a ``ValueError`` naming the key.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import checks
from ..models.classifier import NOISE_LEVELS
from .config import RunConfig, config_fields
from .experiment import Result, train_model
from .folders import (RunFolderError, append_line, read_jsonl, refuse_overwrite, rewrite_jsonl,
                      write_json)
from .loop import History
from .runs import CONFIG, METRICS, read_metrics, train_run
from .sweeps import run_record

__all__ = ["SweepSpec", "load_spec", "parse_spec", "run_sweep", "read_results", "run_trial",
           "train_spec", "spec_records", "course_spec", "TrialsFailed", "SWEEP_ENGINES",
           "SPECS_DIR"]

SWEEP_ENGINES = ("local", "ray")
SPEC_FILE, RESULTS, TRIALS = "sweep.json", "results.jsonl", "trials"
TABLES = ("base", "grid", "trials", "resources", "quick", "inherit")
RESOURCES = ("cpus-per-trial", "gpus-per-trial")
FIELDS = config_fields()
COURSE_LEVEL = "course-level"  # in a [[trials]] table: the level of nl.NOISE_LEVELS[noise]
# The repository's sweeps/ folder, reached through the package (a link in the repository, the
# files themselves in an installed wheel), so that hosted notebooks read the same specs.
SPECS_DIR = Path(__file__).resolve().parents[1] / "course" / "sweeps"


class TrialsFailed(RuntimeError):
    """Some trials raised an error (not a divergence: that is a result). The others are saved;
    ``--resume`` runs the failed ones again. The message lists each failed trial and why."""


@dataclass
class SweepSpec:
    """A parsed spec: the trials, each a full :class:`RunConfig` as a dict.

    Attributes:
        trials: ``{id: config dict}`` in the order they run.
        params: ``{id: {option: value}}``: the values that vary between trials.
        resources: ``cpus-per-trial`` / ``gpus-per-trial`` for the Ray engine (may be empty).
        source: where the spec came from (for messages).
    """

    trials: dict[str, dict]
    params: dict[str, dict]
    resources: dict = field(default_factory=dict)
    source: str = "spec"

    def where(self, **values) -> "SweepSpec":
        """The trials whose config has these values, e.g. ``spec.where(noise="none")``.

        Raises:
            ValueError: an unknown option, or no trial matches.
        """
        for name in values:
            _option(name, f"where() of {self.source}")
        keep = [tid for tid, c in self.trials.items()
                if all(c[k] == v for k, v in values.items())]
        if not keep:
            raise ValueError(f"no trial of {self.source} has {values}")
        return SweepSpec({t: self.trials[t] for t in keep}, {t: self.params[t] for t in keep},
                         self.resources, self.source)


def _cli_name(name: str) -> str:
    return name.replace("_", "-")


def _option(key: str, where: str) -> str:
    """The :class:`RunConfig` field of a spec key (``batch-size`` or ``batch_size``)."""
    name = key.replace("-", "_")
    if name not in FIELDS:
        allowed = ", ".join(info.flag for info in FIELDS.values())
        raise ValueError(f"unknown option {key!r} in {where}; allowed: {allowed}")
    return name


def _typed(name: str, value, where: str):
    """``value`` as the type of field ``name`` (see :class:`nsde_lib.train.config.FieldInfo`)."""
    return FIELDS[name].typed(value, where)


def _table(spec: dict, name: str, where: str) -> dict:
    table = spec.get(name, {})
    if not isinstance(table, dict):
        raise ValueError(f"[{name}] in {where} must be a table of options, got {table!r}")
    return table


def _values(name: str, key: str, values: list, label: str, source: str) -> list:
    """The typed values of one swept option: at least one, none twice."""
    if not values:
        raise ValueError(f"{label} {key} in {source} is empty: give it at least one value")
    typed = [_typed(name, v, f"{label} {key}[{i}] in {source}") for i, v in enumerate(values)]
    if len(set(map(repr, typed))) != len(typed):
        raise ValueError(f"{label} {key} in {source} lists a value twice: {values}")
    return typed


def _options(table: dict, label: str, source: str, *, lists: bool) -> dict:
    """The options of a table, checked and typed; with ``lists`` a list is a set of values to
    sweep (``[grid]``, ``[[trials]]``), without (``[base]``) it is refused."""
    out = {}
    for key, value in table.items():
        name = _option(key, f"{label} of {source}")
        if name in out:
            raise ValueError(f"option {key!r} is given twice in {label} of {source} (as "
                             f"{_cli_name(name)!r} and {name!r})")
        if isinstance(value, list) and lists:
            out[name] = _values(name, key, value, label, source)
        elif isinstance(value, list):
            raise ValueError(f"{label} {key} in {source} is a list: the values to sweep belong "
                             f"in [grid] (or a [[trials]] table)")
        else:
            out[name] = _typed(name, value, f"{label} {key} in {source}")
    return out


def _product(options: dict) -> list[dict]:
    """Every combination of the options' values (a list sweeps, a single value stays)."""
    swept = {k: v if isinstance(v, list) else [v] for k, v in options.items()}
    return [dict(zip(swept, combo)) for combo in itertools.product(*swept.values())]


def _format(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def trial_id(params: dict) -> str:
    """The folder name of a trial: ``k=v`` of the varying values joined by ``_`` (``base`` when
    nothing varies); characters a file name should not hold become ``-``; a very long name is
    cut and completed by a hash so that it stays unique."""
    if not params:
        return "base"
    text = "_".join(f"{_cli_name(k)}={_format(v)}" for k, v in params.items())
    text = re.sub(r"[^A-Za-z0-9._=+-]", "-", text)
    if len(text) > 120:
        text = text[:100] + "_" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return text


def parse_spec(spec: dict, source: str = "spec", *, quick: bool = False) -> SweepSpec:
    """Expand a spec (a dict as TOML gives it) into validated trials; with ``quick`` the
    options of its ``[quick]`` table replace theirs wherever they are set (the smoke test).

    Raises:
        ValueError: an unknown table or option, an empty grid or list, a value of the wrong
            type, an option set in two places, two trials that are the same run, or a value
            ``train`` refuses; the message names the key (and the trial).
    """
    if not isinstance(spec, dict):
        raise ValueError(f"{source} must be a TOML table, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in TABLES]
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r} in {source}; allowed: "
                         f"{', '.join(TABLES)}")
    if "inherit" in spec:
        raise ValueError(f"inherit in {source} names another spec file: read it with load_spec")
    quick_table = _table(spec, "quick", source)
    for key in quick_table:
        _option(key, f"[quick] of {source}")
    if quick:
        spec = _quick(spec, quick_table, source)
    base = _options(_table(spec, "base", source), "[base]", source, lists=False)
    grid_table = _table(spec, "grid", source)
    for key, values in grid_table.items():
        if not isinstance(values, list):
            raise ValueError(f"[grid] {key} in {source} must be a list of values, got "
                             f"{values!r} (a single value belongs in [base])")
    grid = _options(grid_table, "[grid]", source, lists=True)
    for name in grid:
        if name in base:
            raise ValueError(f"option {_cli_name(name)!r} is both in [base] and [grid] of "
                             f"{source}; keep one")
    explicit = spec.get("trials", [{}])
    if not isinstance(explicit, list) or not all(isinstance(t, dict) for t in explicit):
        raise ValueError(f"[[trials]] in {source} must be a list of tables")
    if not explicit:
        raise ValueError(f"[[trials]] in {source} is empty: give at least one, or leave it out")
    extra = []
    for i, table in enumerate(explicit):
        label = f"[[trials]] #{i + 1}"
        options = _options(_course_level(table, label, source), label, source, lists=True)
        for name in options:
            if name in base or name in grid:
                other = "[base]" if name in base else "[grid]"
                raise ValueError(f"option {_cli_name(name)!r} of {label} in {source} is also "
                                 f"in {other}; set each option in one place")
        extra.extend(_product(options))
    if not grid and extra == [{}]:
        raise ValueError(f"{source} has no trials: its [grid] is empty and it has no [[trials]]")

    resources = {}
    for key, value in _table(spec, "resources", source).items():
        checks.one_of(f"[resources] key in {source}", key, RESOURCES)
        number = (checks.count if key == "cpus-per-trial" else checks.non_negative)
        resources[key] = number(f"[resources] {key} in {source}", value)

    trials, params, valid = {}, {}, set()
    points = _product(grid)
    for options in extra:
        for point in points:
            varying = {**options, **point}
            tid = trial_id(varying)
            if tid in trials:
                raise ValueError(f"two trials of {source} are the same run ({tid}); remove one")
            config = asdict(RunConfig()) | base | varying
            key = repr(sorted((k, v) for k, v in config.items() if k != "seed"))
            if key not in valid:  # validate() builds the model: once per config, not per seed
                try:
                    RunConfig.from_dict(config).validate()
                except (TypeError, ValueError) as err:
                    raise ValueError(f"trial {tid} of {source}: {err}") from None
                valid.add(key)
            checks.count(f"seed of trial {tid} in {source}", config["seed"], low=0)
            trials[tid], params[tid] = config, varying
    return SweepSpec(trials, params, resources, source)


def _course_level(table: dict, label: str, source: str) -> dict:
    """A ``[[trials]]`` table with ``course-level = true`` gets the level of its noise preset
    from :data:`nsde_lib.NOISE_LEVELS` (the levels chapter 04 chose), so a spec never copies
    them as numbers."""
    if COURSE_LEVEL not in table:
        return table
    table = dict(table)
    if table.pop(COURSE_LEVEL) is not True:
        raise ValueError(f"{COURSE_LEVEL} in {label} of {source} must be true (or left out)")
    noise = table.get("noise")
    if noise not in NOISE_LEVELS:
        raise ValueError(f"{COURSE_LEVEL} in {label} of {source} needs a noise preset, one of "
                         f"{', '.join(NOISE_LEVELS)}; got noise = {noise!r}")
    for name, value in NOISE_LEVELS[noise].items():
        if name in table:
            raise ValueError(f"{label} of {source} sets {name} and {COURSE_LEVEL}: keep one")
        table[name] = value
    return table


def _quick(spec: dict, quick: dict, source: str) -> dict:
    """``spec`` with each option of ``quick`` replacing that option where it is set (``[grid]``,
    ``[base]`` or ``[[trials]]``); an option set nowhere goes to ``[base]`` (``[grid]`` if it is
    a list)."""
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.items()}
    spec["trials"] = [dict(t) for t in spec.get("trials", [{}])]
    tables = [spec.setdefault("grid", {}), spec.setdefault("base", {})] + spec["trials"]
    for key, value in quick.items():
        name = _option(key, f"[quick] of {source}")
        found = False
        for table in tables:
            for old in [k for k in table if _norm(k) == name]:
                table[old] = value  # in place: the trials keep their order and their ids
                found = True
        if not found:
            spec["grid" if isinstance(value, list) else "base"][key] = value
    spec.pop("quick", None)
    return spec


def _norm(key: str) -> str:
    return key.replace("-", "_")


def _read_toml(path: Path) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: the same parser as a package
        import tomli as tomllib

    if not path.is_file():
        raise FileNotFoundError(f"no sweep spec at {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None


def load_spec(path: str | os.PathLike, *, quick: bool = False) -> SweepSpec:
    """Read and expand a TOML spec file (see the module docstring).

    ``inherit = "other.toml"`` (a file beside it) takes that spec's ``[base]`` and ``[quick]``
    options, except those this spec sets itself: chapters 05 and 06 train chapter 04's models
    that way. With ``quick`` the ``[quick]`` options apply (see :func:`parse_spec`).

    Raises:
        FileNotFoundError: no such file. ValueError: not TOML, or a bad spec (names the key).
    """
    path = Path(path)
    spec = _read_toml(path)
    parent = spec.pop("inherit", None) if isinstance(spec, dict) else None
    if parent is not None:
        if not isinstance(parent, str):
            raise ValueError(f"inherit in {path} must be a file name, got {parent!r}")
        inherited = _read_toml(path.parent / parent)
        if "inherit" in inherited:
            raise ValueError(f"{path.parent / parent} inherits too: one level only")
        own = {_norm(k) for t in [spec.get("base", {}), spec.get("grid", {})]
               + list(spec.get("trials", [])) for k in t}
        base = _table(inherited, "base", parent)
        spec["base"] = {k: v for k, v in base.items() if _norm(k) not in own} \
            | _table(spec, "base", str(path))
        mine = {_norm(k) for k in _table(spec, "quick", str(path))}
        quick_parent = _table(inherited, "quick", parent)
        spec["quick"] = {k: v for k, v in quick_parent.items() if _norm(k) not in mine} \
            | _table(spec, "quick", str(path))
    return parse_spec(spec, str(path), quick=quick)


def course_spec(name: str, *, quick: bool | None = None) -> SweepSpec:
    """A chapter's grid: ``sweeps/<name>.toml`` of the course, read by :func:`load_spec`.

    Args:
        name: the spec's file name without ``.toml``, e.g. ``"04_table1"``.
        quick: apply its ``[quick]`` table (default: :func:`nsde_lib.is_quick`, i.e.
            ``NSDE_QUICK=1``).

    Raises:
        ValueError: no such spec (the message lists the course's specs).
    """
    from ..runtime import is_quick

    names = sorted(p.stem for p in SPECS_DIR.glob("*.toml"))
    checks.one_of("name (a spec in sweeps/)", name, names)
    return load_spec(SPECS_DIR / f"{name}.toml", quick=is_quick() if quick is None else quick)


# --- one trial ------------------------------------------------------------------------------------

def run_trial(config: dict, folder: str, threads: int | None = 1, store="auto") -> dict:
    """Train one trial into its run folder (resumed if it has begun) and return its metrics.

    The engines call this, in this process (local) or in a Ray worker; ``threads`` sets
    torch's CPU threads for the trial (restored afterwards); ``store`` is the run store (a
    trial the store holds is loaded from it, see :func:`nsde_lib.train_run`).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        path = Path(folder)
        train_run(RunConfig.from_dict(config), path, resume=(path / CONFIG).is_file(),
                  progress=False, log=lambda message: None, store=store)
        return read_metrics(path)
    finally:
        torch.set_num_threads(previous)


def train_spec(spec: SweepSpec, *, hooks=None, store="auto", progress: bool = True,
               desc: str = "models") -> dict[str, Result]:
    """Every trial of ``spec`` through :func:`nsde_lib.train_model`, in this process: what a chapter
    calls (``python -m nsde_lib sweep`` trains the same models, and the run store shares them).

    Args:
        spec: from :func:`load_spec`.
        hooks: ``hooks(config) -> list of Hook`` (fresh recorders for each trial), or None.
        store: the run store (see :func:`nsde_lib.train_model`).
        progress: a tqdm bar over the trials (with the trial's own bar under it).

    Returns:
        ``{trial id: Result}`` in the spec's order.
    """
    from tqdm.auto import tqdm

    results = {}
    bar = tqdm(spec.trials.items(), desc=desc, disable=not progress, leave=False)
    for tid, values in bar:
        config = RunConfig.from_dict(values)
        mine = hooks(config) if hooks is not None else ()
        bar.set_postfix_str(tid, refresh=False)
        results[tid] = train_model(config, hooks=mine, store=store, progress=progress, desc=tid)
    bar.close()
    return results


def spec_records(spec: SweepSpec, results: dict[str, Result]) -> list[dict]:
    """The results of :func:`train_spec` as records of :func:`nsde_lib.sweep` (the values that
    vary, ``seed``, ``acc``, ``diverged``, ..., ``history``), ready for
    :func:`nsde_lib.summarize`; each record's ``result`` is the :class:`Result`."""
    records = []
    for tid, result in results.items():
        params = {k: v for k, v in spec.params[tid].items() if k != "seed"}
        record = run_record(params, result.config.seed, result.history)
        record.update(trial=tid, result=result)
        records.append(record)
    return records


# --- the sweep folder ---------------------------------------------------------------------------

def _science(config: dict) -> dict:
    return RunConfig.from_dict(config).science()


def _check_sweep_folder(spec: SweepSpec, out: Path, resume: bool) -> None:
    """Refuse to overwrite anything, or to resume a sweep with another spec."""
    stored_path = out / SPEC_FILE
    if not resume:
        refuse_overwrite(out, "a sweep", "another sweep" if stored_path.is_file() else "files")
        return
    if not stored_path.is_file():
        raise FileNotFoundError(f"no sweep to resume at {out} (no {SPEC_FILE}); start it "
                                f"without --resume, or check the folder name")
    try:
        stored = json.loads(stored_path.read_text())["trials"]
        stored = {tid: _science(config) for tid, config in stored.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise RunFolderError(f"{stored_path} cannot be read ({type(err).__name__}); nothing was "
                             f"changed. Restore it, or start the sweep in another --out") from None
    given = {tid: _science(config) for tid, config in spec.trials.items()}
    if stored.keys() != given.keys():
        only_stored = [tid for tid in stored if tid not in given]
        only_given = [tid for tid in given if tid not in stored]
        what = (f"trial {only_given[0]} is not in it" if only_given
                else f"its trial {only_stored[0]} is not in the spec")
        raise ValueError(f"{out} holds another sweep ({what}); resume it with its own spec, or "
                         f"start this one with another --out")
    for tid, config in given.items():
        diff = [k for k in config if config[k] != stored[tid].get(k)]
        if diff:
            k = diff[0]
            raise ValueError(f"{out} holds another sweep: trial {tid} has {_cli_name(k)} = "
                             f"{stored[tid].get(k)!r}, the spec asks {config[k]!r}; resume it "
                             f"with its own spec, or start this one with another --out")


def _finished(out: Path, repair: bool = False) -> dict[str, dict]:
    """``{trial: results line}`` of ``results.jsonl``. A torn last line (a crash while it was
    written) counts as unfinished (its run folder still holds its epochs); with ``repair`` it
    is moved to ``results.jsonl.dropped`` so that new lines start on a line of their own."""
    records, torn = read_jsonl(out / RESULTS)
    if torn and repair:
        rewrite_jsonl(out / RESULTS, records, torn)
    return {r["trial"]: r for r in records if "trial" in r}


def run_sweep(spec: SweepSpec, out: str | os.PathLike, *, engine: str = "local",
              resume: bool = False, cpus_per_trial: int | None = None,
              gpus_per_trial: float | None = None, progress: bool = True, log=print,
              store="auto") -> dict:
    """Run every unfinished trial of ``spec`` into ``out`` and return ``{trial: results line}``.

    Args:
        spec: from :func:`load_spec` / :func:`parse_spec`.
        out: the sweep folder (``sweep.json``, ``results.jsonl``, ``trials/<id>/``).
        engine: ``"local"`` (one trial after another in this process) or ``"ray"`` (Ray Tune
            trials on a local Ray instance, or on the cluster ``RAY_ADDRESS`` names).
        resume: continue the sweep in ``out``: finished trials are skipped, begun ones resume
            from their last checkpoint.
        cpus_per_trial: torch threads per trial, and under Ray the CPUs each trial reserves
            (default the spec's ``[resources]``, else 1). The same number under both engines
            gives the same numbers, to the last bit (a float sum splits differently over
            another number of threads).
        gpus_per_trial: Ray only: the share of a GPU each trial reserves (default the spec's,
            else 0: the trials run on CPUs).
        progress: a tqdm bar over the trials.
        log: where one-line messages go.
        store: the run store (``"auto"``, ``None`` or a path; see :func:`nsde_lib.train_model`): a
            trial it holds is loaded and its folder written from it.

    Raises:
        ValueError: a bad engine or resource, or ``out`` holding another sweep.
        FileExistsError: ``out`` exists, is not empty and ``resume`` is False.
        TrialsFailed: some trials raised errors; the others' results are saved.
    """
    from tqdm.auto import tqdm

    checks.one_of("engine", engine, SWEEP_ENGINES)
    out = Path(out)
    _check_sweep_folder(spec, out, resume)
    if cpus_per_trial is None:
        cpus_per_trial = spec.resources.get("cpus-per-trial", 1)
    checks.count("cpus_per_trial", cpus_per_trial)
    if gpus_per_trial is None:
        gpus_per_trial = spec.resources.get("gpus-per-trial", 0.0)
    gpus_per_trial = checks.non_negative("gpus_per_trial", gpus_per_trial)
    done = _finished(out, repair=True) if resume else {}
    pending = [tid for tid in spec.trials if tid not in done]
    started = False
    if engine == "ray" and pending:
        from . import ray_engine  # Ray is an optional extra: imported only when asked for

        started = ray_engine.start(cpus_per_trial, gpus_per_trial)  # before any file is made

    if not (out / SPEC_FILE).is_file():  # first: a folder with anything in it is a sweep
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / SPEC_FILE, {"source": spec.source, "trials": spec.trials,
                                      "params": spec.params})
    (out / TRIALS).mkdir(exist_ok=True)
    if resume:
        log(f"{out}: {len(done)} of {len(spec.trials)} trials finished, {len(pending)} to run")
    bar = tqdm(total=len(pending), desc="trials", disable=not progress)

    def on_result(tid: str, metrics: dict) -> None:
        line = {"trial": tid, "params": spec.params[tid], "metrics": metrics}
        append_line(out / RESULTS, line)
        done[tid] = line
        bar.set_postfix_str(tid, refresh=False)  # the trial that finished last
        bar.update(1)

    jobs = {tid: (spec.trials[tid], str((out / TRIALS / tid).resolve())) for tid in pending}
    failures = {}
    try:
        if engine == "local":
            for tid, (config, folder) in jobs.items():
                try:
                    metrics = run_trial(config, folder, cpus_per_trial, store)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as err:  # noqa: BLE001 (reported with the trial, then on)
                    failures[tid] = f"{type(err).__name__}: {err}"
                    bar.update(1)
                    continue
                on_result(tid, metrics)
        elif jobs:
            failures = ray_engine.run_trials(jobs, functools.partial(run_trial, store=store),
                                             on_result,
                                             cpus=cpus_per_trial, gpus=gpus_per_trial,
                                             storage=out / "ray")
    finally:
        bar.close()
        if started:
            ray_engine.stop(started)
    if failures:
        listed = "; ".join(f"{tid}: {why.splitlines()[0] if why else '?'}"
                           for tid, why in failures.items())
        raise TrialsFailed(f"{len(failures)} of {len(jobs)} trials failed ({listed}); the "
                           f"others are saved in {out}. Fix the cause and run again with "
                           f"--resume")
    return {tid: done[tid] for tid in spec.trials}


def read_results(out: str | os.PathLike) -> list[dict]:
    """The finished trials of a sweep folder as records of :func:`nsde_lib.sweep`.

    Each record is ``{**params, "seed", "acc", "diverged", "diverged_epoch", "diverged_step",
    "history", "extra"}`` (``acc`` NaN for a diverged trial), ready for
    :func:`nsde_lib.summarize`; ``history`` holds every epoch of the trial's
    ``metrics.jsonl`` (the final one only, if the trial folder is not there).

    Raises:
        FileNotFoundError: no sweep at ``out``.
    """
    out = Path(out)
    if not (out / SPEC_FILE).is_file():
        raise FileNotFoundError(f"no sweep at {out} (no {SPEC_FILE})")
    configs = json.loads((out / SPEC_FILE).read_text())["trials"]
    records = []
    for tid, line in _finished(out).items():
        params = {k: v for k, v in line["params"].items() if k != "seed"}
        metrics = line["metrics"]
        folder = out / TRIALS / tid
        epochs = [metrics]
        if (folder / METRICS).is_file():
            epochs = [r for r in read_jsonl(folder / METRICS)[0] if "diverged" not in r]
        epochs = [{k: v for k, v in e.items() if k not in ("diverged", "diverged_epoch",
                                                            "diverged_step")} for e in epochs]
        history = History(epochs=[e for e in epochs if e], diverged=metrics["diverged"],
                          diverged_epoch=metrics.get("diverged_epoch"),
                          diverged_step=metrics.get("diverged_step"))
        record = run_record(params, configs[tid]["seed"], history)
        record["trial"] = tid
        records.append(record)
    return records
