#!/usr/bin/python3
"""Helpers for bench/run: wall-clock timing, sandbox memory (PSS), runc bundles, the table.

Standard library only. Subcommands:
  wall N CMD...                 run CMD N times, print the wall time of each run in ns (one line);
                                exit 1 (printing "fail") if any run fails
  pss ROOT_PID LAUNCHERS        PSS (KiB) of ROOT_PID's process tree, walking PPid and TracerPid
                                links, split into launcher processes (Name in the comma-separated
                                LAUNCHERS) and the rest (the sandbox). Prints
                                "sandbox_kib launcher_kib name:pid:kib ..." (sandbox processes)
  runc-bundle DIR CWD CMD...    write DIR/config.json (from `runc spec`) for a container whose
                                root is DIR/rootfs (the caller rbinds / there) read-only, with a
                                tmpfs /tmp, no terminal, running CMD in CWD
  table RESULTS_TSV             print the comparison table from the results file
"""

import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = ["native", "moat", "runsc", "runc"]


def cmd_wall(args):
    n = int(args[0])
    cmd = args[1:]
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        t1 = time.perf_counter_ns()
        if r.returncode != 0:
            print("fail")
            return 1
        times.append(t1 - t0)
    print(" ".join(str(t) for t in times))
    return 0


def proc_status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
    except OSError:
        return None
    return fields


def proc_pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_pss(args):
    root = int(args[0])
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_status(int(d))
            if st is not None:
                procs[int(d)] = st
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, st in procs.items():
            if pid in tree:
                continue
            ppid = int(st.get("PPid", "0"))
            tracer = int(st.get("TracerPid", "0"))
            if ppid in tree or tracer in tree:
                tree.add(pid)
                grew = True
    launchers = set(args[1].split(",")) if len(args) > 1 else set()
    parts = []
    sandbox = launcher = 0
    for pid in sorted(tree):
        kib = proc_pss_kib(pid)
        name = procs[pid].get("Name", "?")
        if name in launchers:
            launcher += kib
        else:
            sandbox += kib
            parts.append(f"{name}:{pid}:{kib}")
    print(sandbox, launcher, " ".join(parts))
    return 0


def cmd_runc_bundle(args):
    bundle, cwd, cmd = args[0], args[1], args[2:]
    os.makedirs(os.path.join(bundle, "rootfs"), exist_ok=True)
    cfg_path = os.path.join(bundle, "config.json")
    if os.path.exists(cfg_path):
        os.unlink(cfg_path)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    with open(cfg_path) as f:
        c = json.load(f)
    c["root"] = {"path": "rootfs", "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = cmd
    c["process"]["cwd"] = cwd
    # This host's cgroup v1 hierarchy has no per-container dirs for runc to mount.
    c["mounts"] = [m for m in c["mounts"] if m.get("type") != "cgroup"]
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "mode=1777"]})
    with open(cfg_path, "w") as f:
        json.dump(c, f, indent=1)
    return 0


def fmt_ns(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v < 1e3:
        return f"{v:.0f} ns"
    if v < 1e6:
        return f"{v / 1e3:.1f} us"
    if v < 1e9:
        return f"{v / 1e6:.2f} ms"
    return f"{v / 1e9:.2f} s"


def cmd_table(args):
    # results: config \t case \t unit \t value (ns; or "fail"/"skip")
    results = {}
    order = []
    with open(args[0]) as f:
        for line in f:
            cfg, case, unit, val = line.rstrip("\n").split("\t")
            if case not in order:
                order.append(case)
            results.setdefault((cfg, case), {"unit": unit, "vals": [], "fail": False, "skip": False})
            r = results[(cfg, case)]
            if val == "fail":
                r["fail"] = True
            elif val == "skip":
                r["skip"] = True
            else:
                r["vals"].extend(float(x) for x in val.split())
    cfgs = [c for c in CONFIGS if any(k[0] == c for k in results)]

    def med(cfg, case):
        r = results.get((cfg, case))
        if r is None or r["skip"]:
            return None
        if r["fail"] or not r["vals"]:
            return "fail"
        return statistics.median(r["vals"])

    header = ["case", "unit"]
    for c in cfgs:
        header.append(c)
        if c != "native":
            header.append(f"{c}/nat")
    rows = []
    spreads = []
    for case in order:
        unit = next(results[(c, case)]["unit"] for c in cfgs if (c, case) in results)
        row = [case, unit]
        nat = med("native", case)
        sp = [case]
        for c in cfgs:
            m = med(c, case)
            row.append(fmt_ns(m))
            if c != "native":
                if isinstance(m, float) and isinstance(nat, float) and nat > 0:
                    row.append(f"{m / nat:.1f}x")
                else:
                    row.append("-" if m is None else "fail" if m == "fail" else "-")
            r = results.get((c, case))
            if r and len(r["vals"]) > 1 and min(r["vals"]) > 0:
                sp.append(f"{max(r['vals']) / min(r['vals']):.2f} (n={len(r['vals'])})")
            else:
                sp.append("-")
        rows.append(row)
        spreads.append(sp)
    print_table(header, rows)
    print()
    print("spread: max/min over the runs of each cell")
    print_table(["case"] + cfgs, spreads)
    return 0


def print_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = []
        for i, (x, w) in enumerate(zip(row, widths)):
            cells.append(str(x).ljust(w) if i < 2 else str(x).rjust(w))
        print("| " + " | ".join(cells) + " |")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmds = {"wall": cmd_wall, "pss": cmd_pss, "runc-bundle": cmd_runc_bundle, "table": cmd_table}
    fn = cmds.get(sys.argv[1])
    if fn is None:
        print(__doc__, file=sys.stderr)
        return 2
    return fn(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
