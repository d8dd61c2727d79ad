"""Summarise one conformance run (JUnit XML of e2e.test) per SIG into results/summary.md.

A run directory holds one subdirectory per part (parallel, serial), each with the JUnit
XML e2e.test wrote (`--report-dir`) and its log. A test counts once: failed if it failed in
any part, else passed if it passed in one, else skipped (it matched the focus but was
skipped: by conformance/skip.txt, or by the part's label filter in every part), or not reached
(the suite timeout interrupted it or came before it).
Failures are grouped by the first line of their message with numbers and names blurred.

The summary file keeps one section per focus: a new run replaces the section of the same
focus and leaves the others.
"""

from __future__ import annotations

import argparse
import datetime
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

RANK = {"skipped": 0, "not reached": 1, "passed": 2, "failed": 3}
STATES = ("passed", "failed", "skipped", "not reached")
SIG = re.compile(r"\[(sig-[a-z-]+)\]")


def _name(raw: str) -> str:
    return re.sub(r"^\[It\]\s*", "", raw.strip())


def results(run: Path) -> tuple[dict[str, str], dict[str, str], float]:
    """test name -> state, test name -> failure message, seconds of all parts."""
    state: dict[str, str] = {}
    message: dict[str, str] = {}
    seconds = 0.0
    for part in sorted(p for p in run.iterdir() if p.is_dir()):
        if (part / "seconds").exists():
            seconds += float((part / "seconds").read_text())
        for xml in sorted(part.glob("junit*.xml")):
            for case in ET.parse(xml).getroot().iter("testcase"):
                name = _name(case.get("name", ""))
                if not name or (name.startswith("[") and not SIG.match(name)):
                    continue  # suite nodes: [SynchronizedBeforeSuite], [ReportAfterSuite] ...
                failure = case.find("failure")
                error = case.find("error")  # interrupted (the suite timeout) or aborted
                skipped = case.find("skipped")
                if failure is not None:
                    now = "failed"
                elif error is not None or (skipped is not None and "interrupt" in skipped.get("message", "").lower()):
                    now = "not reached"
                elif skipped is not None:
                    now = "skipped"
                else:
                    now = "passed"
                if RANK[now] >= RANK.get(state.get(name, "skipped"), 0):
                    state[name] = now
                if failure is not None:
                    message[name] = (failure.get("message") or failure.text or "").strip()
    return state, message, seconds


def cause(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = next((ln for ln in lines if not ln.startswith("[FAILED]") or len(ln) > 9), lines[0] if lines else "")
    first = re.sub(r"^\[FAILED\]\s*", "", first)
    first = re.sub(r'"[^"]*"', '"…"', first)
    first = re.sub(r"\b[0-9a-f]{8,}\b|\d+(\.\d+)?", "N", first)
    return first[:220]


def section(run: Path, focus: str, version: str, skip_list: Path) -> str:
    state, message, seconds = results(run)
    pattern = re.compile(focus)
    state = {n: s for n, s in state.items() if pattern.search(n) or s != "skipped"}
    per_sig: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
    for name, st in state.items():
        m = SIG.search(name)
        per_sig[m.group(1) if m else "other"][st] += 1
    total = {k: sum(v[k] for v in per_sig.values()) for k in STATES}
    date = datetime.datetime.fromtimestamp(run.stat().st_mtime, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    skipped_by_list = sum(1 for ln in skip_list.read_text().splitlines() if ln.strip() and not ln.startswith("#"))
    out = [f"<!-- run focus={focus} -->", f"## `{focus}`", "",
           f"Run {run.name} ({date}), suite k8s.io/kubernetes {version} e2e.test, "
           f"{seconds / 60:.0f} min wall time; skip list: {skipped_by_list} patterns (conformance/skip.txt).", ""]
    if not state:
        log = next(iter(sorted(run.glob("*/e2e.log"))), None)
        tail = log.read_text(errors="replace").splitlines()[-25:] if log else []
        out += ["No JUnit results: the suite did not get to its tests. Log tail:", "", "```", *tail, "```", ""]
        return "\n".join(out)
    cols = [k for k in STATES if k != "not reached" or total[k]]
    out += ["| SIG | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for sig in sorted(per_sig):
        out.append(f"| {sig} | " + " | ".join(str(per_sig[sig][k]) for k in cols) + " |")
    out += ["| **all** | " + " | ".join(f"**{total[k]}**" for k in cols) + " |", ""]
    if total["not reached"]:
        out += ["not reached: cut off by the suite timeout (TIMEOUT/SERIAL_TIMEOUT) before or while running.", ""]
    failed = sorted(n for n, s in state.items() if s == "failed")
    if failed:
        groups: dict[str, list[str]] = defaultdict(list)
        for name in failed:
            groups[cause(message.get(name, ""))].append(name)
        out += ["Failures by cause (first line of the failure, numbers and quoted names blurred):", ""]
        for text, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            out.append(f"- **{len(names)} tests** `{text}`")
            out += [f"  - {n}" for n in names]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--focus", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--skip-list", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    new = section(args.run, args.focus, args.version, args.skip_list)
    (args.run / "summary.md").write_text(new + "\n")
    header = ["# Conformance results", "",
              "Written by scripts/conformance.sh (conformance/summarize.py); one section per focus, newest first.",
              "Counts are tests: passed and failed ran; skipped matched the focus but were not run.", ""]
    kept: list[str] = []
    if args.out.exists():
        for block in re.split(r"(?m)^(?=<!-- run focus=)", args.out.read_text()):
            if block.startswith("<!-- run focus=") and not block.startswith(f"<!-- run focus={args.focus} -->"):
                kept.append(block.rstrip() + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header) + "\n" + new + "\n" + "\n".join(kept))


if __name__ == "__main__":
    main()
