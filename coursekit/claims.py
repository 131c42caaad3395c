"""``build/claims.json``: every claim the chapters of a ``make course`` run made, with its verdict.

Each chapter's kernel appends its claims to ``build/claims/NN_slug.jsonl``
(:func:`nsde_lib.course.claims.claim`, through ``$NSDE_CLAIMS``, which
:func:`coursekit.execute.execute` sets). :func:`collect` gathers those files into
``build/claims.json`` — per chapter: the run's mode, its seeds, how many claims held, and every
claim with its verdict and evidence — :func:`summary_line` is the line ``make course`` prints
per chapter, and :func:`claims_page` the site's page "Claims of this run".
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from nsde_lib.course.claims import read_claims

FOLDER = "claims"          # build/claims/NN_slug.jsonl, one file per chapter
RECORD = "claims.json"
PAGE = "claims"            # the site's page (claims.md → claims.html)
QUICK_NOTE = ("a quick run (`NSDE_QUICK=1`: one seed, an epoch or two on a small subset): its "
              "verdicts show that the code runs, not what the science says")


def chapter_file(out: Path, name: str) -> Path:
    """Where chapter ``name``'s kernel writes its claims in a build under ``out``."""
    return Path(out) / FOLDER / f"{name}.jsonl"


def _mode(quick: bool) -> str:
    return "quick mode" if quick else "full run"


def chapter_entry(records: list[dict], *, quick: bool, ok: bool = True, built: str = "") -> dict:
    """One chapter's part of ``claims.json`` from the records its kernel wrote."""
    seeds = sorted({s for r in records for s in r["seeds"]})
    held = sum(r["held"] for r in records)
    return {"mode": _mode(quick), "quick": quick, "ran_to_the_end": ok, "built": built,
            "seeds": seeds, "held": held, "did_not_hold": len(records) - held,
            "claims": [{k: r[k] for k in ("text", "held", "evidence", "seeds", "quick")}
                       for r in records]}


def collect(out: Path, ran: dict[str, bool], *, quick: bool, keep=lambda name: True) -> dict:
    """Gather the claims of the chapters that ran into ``out/claims.json`` and return it.

    Args:
        out: the build folder.
        ran: ``{chapter name: whether it ran to the end}`` for the chapters of this build;
            their files under ``out/claims/`` are read (a missing file: no claims).
        quick: whether this build ran in quick mode.
        keep: which chapters of an earlier build (a partial ``--only`` build) stay listed.

    Returns:
        ``{"mode", "chapters": {name: chapter_entry(...)}}``; ``mode`` is "full run",
        "quick mode" or "mixed" when a partial build left chapters of the other mode.
    """
    path = Path(out) / RECORD
    try:
        chapters = json.loads(path.read_text(encoding="utf-8"))["chapters"]
    except (OSError, ValueError, KeyError, TypeError):
        chapters = {}
    stamp = time.strftime("%Y-%m-%d %H:%M")
    for name, ok in ran.items():
        chapters[name] = chapter_entry(read_claims(chapter_file(out, name)), quick=quick,
                                       ok=ok, built=stamp)
    chapters = {name: chapters[name] for name in sorted(chapters) if name in ran or keep(name)}
    modes = {entry["mode"] for entry in chapters.values()}
    report = {"mode": modes.pop() if len(modes) == 1 else ("mixed" if modes else _mode(quick)),
              "chapters": chapters}
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    return report


def summary_line(name: str, entry: dict) -> str:
    """``04_training_neural_sdes           claims: 5 held, 1 did not`` (what ``make course``
    prints per chapter)."""
    n = entry["held"] + entry["did_not_hold"]
    counts = f"{entry['held']} held, {entry['did_not_hold']} did not" if n else "none recorded"
    cut = "" if entry["ran_to_the_end"] else " (the chapter stopped early)"
    return f"{name:<32} claims: {counts}{cut}"


# --- the site's page ------------------------------------------------------------------------------

def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "—"
    return str(value)


def evidence_text(evidence: dict) -> str:
    """The numbers behind a verdict as one line: ``label: 0.91, 0.93; other label: 2``; a list
    of lists (per σ, per seed) keeps its rows apart with parentheses."""
    parts = []
    for label, value in evidence.items():
        if isinstance(value, list):
            shown = ", ".join(f"({', '.join(map(_number, row))})" if isinstance(row, list)
                              else _number(row) for row in value)
        else:
            shown = _number(value)
        parts.append(f"{label}: {shown}")
    return "; ".join(parts)


def seeds_text(seeds: list) -> str:
    """``seed 0``, ``seeds 0 and 1``, ``seeds 0, 1 and 2``; "" when there are none."""
    if not seeds:
        return ""
    words = [str(s) for s in seeds]
    if len(words) == 1:
        return f"seed {words[0]}"
    return f"seeds {', '.join(words[:-1])} and {words[-1]}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_page(report: dict, titles: dict[str, str]) -> str:
    """The site's page "Claims of this run" (MyST markdown): per chapter, a table of its claims,
    whether each held, and the numbers behind the verdict."""
    quick = [name for name, entry in report["chapters"].items() if entry["quick"]]
    lines = ["# Claims of this run", "",
             "The chapters write their results in sentences computed from the numbers of the run, "
             "and state a direction only where every seed agrees. Each claim such a sentence makes "
             "about the trained models is listed here with whether this run supports it and the "
             "numbers behind that verdict. A claim that did not hold is a finding of this run, not "
             "an error: its chapter says what the run found instead.", ""]
    if quick:
        which = "This was" if len(quick) == len(report["chapters"]) else \
            f"Chapters {', '.join(quick)} come from"
        lines += [f"{which} {QUICK_NOTE}.", ""]
    if not report["chapters"]:
        lines += ["No chapter has been run yet.", ""]
    for name, entry in report["chapters"].items():
        n = entry["held"] + entry["did_not_hold"]
        seeds = seeds_text(entry["seeds"])
        lines += [f"## {titles.get(name, name)}", ""]
        about = (f"{entry['mode'].capitalize()}{', ' + seeds if seeds else ''}, "
                 f"{entry['built']}: " if entry["built"] else "")
        if not n:
            lines += [f"{about}no claims about trained models recorded"
                      + ("." if entry["ran_to_the_end"] else ": the chapter stopped early."), ""]
            continue
        stopped = "" if entry["ran_to_the_end"] else \
            " The chapter stopped early: claims after the failure are missing."
        lines += [f"{about}{entry['held']} of {n} claims held.{stopped}", "",
                  "| claim | in this run | the numbers behind it |", "|---|---|---|"]
        for c in entry["claims"]:
            verdict = "held" if c["held"] else "**did not hold**"
            numbers = _cell(evidence_text(c["evidence"]))
            lines.append(f"| {_cell(c['text'])} | {verdict} | {numbers} |")
        lines.append("")
    return "\n".join(lines)
