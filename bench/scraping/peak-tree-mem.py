#!/usr/bin/env python3
"""Run a command and report the peak memory of its whole process tree.

Usage: peak-tree-mem.py [--interval-ms 50] [--out FILE] [--] COMMAND [ARG...]

Every interval (default 50 ms; back to back if a scan takes longer) it sums, over the command and every process descending
from it (plus any process left in the command's session, which catches children that
were re-parented after a double fork, e.g. Chromium's crashpad handler):
  - PSS (Pss in /proc/PID/smaps_rollup): shared pages split between the processes
    sharing them, so the sum is what the tree really costs;
  - RSS (Rss in the same file): resident pages, shared ones counted once per process.
and keeps the peaks. When the command exits it writes one JSON line
  {"peak_pss_mib": .., "peak_rss_mib": .., "wall_s": .., "samples": ..,
   "mean_interval_ms": .., "peak_procs": ..}
to stderr, or to FILE with --out, and exits with the command's exit code (128 + signal
number if a signal ended it). The command's stdout and stderr pass through untouched.
smaps_rollup of processes of another user needs root (or CAP_SYS_PTRACE); they are
skipped otherwise. Linux only.
"""

import json
import os
import signal
import subprocess
import sys
import time


def parse_args(argv):
    interval = 0.05
    out = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a == "--interval-ms":
            interval = float(argv[i + 1]) / 1000.0
            i += 2
        elif a == "--out":
            out = argv[i + 1]
            i += 2
        elif a.startswith("-"):
            sys.exit(f"peak-tree-mem: unknown option {a}")
        else:
            break
    cmd = argv[i:]
    if not cmd:
        sys.exit(__doc__)
    return interval, out, cmd


def stat_fields(pid):
    """(ppid, session id) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] = state, rest[1] = ppid, rest[2] = pgrp, rest[3] = session
    return int(rest[1]), int(rest[3])


def tree(root, sid):
    parents = {}
    members = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = stat_fields(pid)
        if st is None:
            continue
        parents[pid] = st[0]
        if st[1] == sid:
            members.add(pid)
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in parents or pid == root:
            members.add(pid)
        stack.extend(children.get(pid, ()))
    return members


def rollup(pid):
    """(pss_kib, rss_kib) of a process, or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None
    pss = rss = 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
    return pss, rss


def main():
    interval, out, cmd = parse_args(sys.argv[1:])
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, start_new_session=True)
    except OSError as e:
        sys.exit(f"peak-tree-mem: cannot run {cmd[0]}: {e}")
    # forward Ctrl-C / SIGTERM to the command's session
    def forward(signum, _frame):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    peak_pss = peak_rss = 0
    peak_procs = 0
    samples = 0
    next_tick = time.monotonic()
    while True:
        next_tick += interval
        members = tree(proc.pid, proc.pid)
        pss = rss = 0
        n = 0
        for pid in members:
            r = rollup(pid)
            if r is None:
                continue
            pss += r[0]
            rss += r[1]
            n += 1
        samples += 1
        peak_pss = max(peak_pss, pss)
        peak_rss = max(peak_rss, rss)
        peak_procs = max(peak_procs, n)
        try:
            # a sample every `interval` from the previous one's start, or back to back
            # when a scan takes longer than that
            code = proc.wait(timeout=max(0.0, next_tick - time.monotonic()))
            break
        except subprocess.TimeoutExpired:
            next_tick = max(next_tick, time.monotonic())
    wall = time.monotonic() - t0
    line = json.dumps({
        "peak_pss_mib": round(peak_pss / 1024, 1),
        "peak_rss_mib": round(peak_rss / 1024, 1),
        "wall_s": round(wall, 3),
        "samples": samples,
        "mean_interval_ms": round(wall * 1000 / samples, 1),
        "peak_procs": peak_procs,
    })
    if out:
        with open(out, "w") as f:
            f.write(line + "\n")
    else:
        sys.stderr.write(line + "\n")
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
