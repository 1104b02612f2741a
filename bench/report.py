#!/usr/bin/env python3
"""Turn the guest's results.txt ("DAEMON METRIC VALUE" lines) into the
benchmark table: printed, and written as RESULTS.json and RESULTS.md.

Usage: report.py RESULTS_TXT RESULTS_PREFIX [--luns N --hot N --smp N
--mem MiB --kernel KVER --wall SECS]
"""

import argparse
import datetime
import json
import math
import os
import platform
import sys

# (metric key, row label, unit, scale). Lower is better for every row.
ROWS = [
    ("cold_start_s", "cold start: {luns} LUNs x 4 paths, all maps complete", "s", 1),
    ("hot_add_s", "hot add: {hot} LUNs x 4 paths at once, all maps complete", "s", 1),
    ("hot_add_cpu_s", "hot add: daemon CPU", "s", 1),
    ("hot_add_map_loads", "hot add: table loads (creates + reloads)", "", 1),
    ("reinstate_median_s", "reinstate: path back to running -> dm active, median", "s", 1),
    ("reinstate_max_s", "reinstate: max", "s", 1),
    ("iofail_seen_median_s", "I/O error: dm fails path -> daemon shows failed, median", "s", 1),
    ("iofail_seen_max_s", "I/O error: max", "s", 1),
    ("steady_cpu_s", "steady state: CPU over {steady} s, all paths healthy", "s", 1),
    ("rss_peak_kb", "peak RSS (VmHWM)", "MiB", 1 / 1024),
    ("topo_idle_median_ms", "show topology, idle: median", "ms", 1),
    ("topo_idle_p99_ms", "show topology, idle: p99", "ms", 1),
    ("topo_reconf_median_ms", "show topology during reconfigure: median", "ms", 1),
    ("topo_reconf_p99_ms", "show topology during reconfigure: p99", "ms", 1),
]
DAEMONS = ("mpathd", "multipathd")


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("prefix")
    ap.add_argument("--luns", type=int, default=64)
    ap.add_argument("--hot", type=int, default=16)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", type=int, default=2048)
    ap.add_argument("--kernel", default=platform.release())
    ap.add_argument("--wall", type=int, default=0)
    ap.add_argument("--peer", help="take multipathd's numbers from this results.txt "
                    "(another run: the table then compares across runs)")
    a = ap.parse_args()

    raw = {}
    # A daemon named twice in BENCH_DAEMONS (e.g. "mpathd multipathd
    # multipathd mpathd", to cancel the order effect) reports each metric
    # once per turn: the table shows the mean.
    turns = {}
    with open(a.results, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            w = line.split()
            if len(w) != 3:
                print(f"{a.results}:{lineno}: ignoring malformed line: {line.rstrip()}",
                      file=sys.stderr)
                continue
            raw.setdefault(w[0], {})[w[1]] = w[2]
            turns.setdefault(w[0], {}).setdefault(w[1], []).append(w[2])

    if a.peer:
        with open(a.peer, encoding="utf-8") as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] == "multipathd":
                    raw.setdefault("multipathd", {})[w[1]] = w[2]

    steady = raw.get("mpathd", {}).get("steady_secs") or raw.get("multipathd", {}).get(
        "steady_secs") or "60"
    rows = []
    for key, label, unit, scale in ROWS:
        vals = {}
        for d in DAEMONS:
            got = [x for x in map(num, turns.get(d, {}).get(key, [])) if x is not None]
            vals[d] = sum(got) / len(got) * scale if got else None
        if key.startswith("hot_add") and a.hot == 0:
            continue  # no hot add in this run
        ratio = None
        if vals["mpathd"] is not None and vals["multipathd"]:
            ratio = vals["mpathd"] / vals["multipathd"]
        rows.append({
            "metric": key,
            "label": label.format(luns=a.luns, hot=a.hot, steady=steady),
            "unit": unit,
            "mpathd": vals["mpathd"],
            "multipathd": vals["multipathd"],
            "ratio": ratio,
            "mpathd_leads": None if ratio is None else ratio < 1,
        })

    now = datetime.datetime.now(datetime.timezone.utc)
    machine = {
        "host_cpu": cpu_model(),
        "host_cores": os.cpu_count(),
        "guest": f"QEMU TCG, {a.smp} vCPUs, {a.mem} MiB, kernel {a.kernel}",
        "peer": "Debian multipath-tools 0.9.4",
    }
    params = {"luns": a.luns, "paths_per_lun": 4, "hot_add_luns": a.hot,
              "steady_secs": num(steady), "guest_wall_secs": a.wall}
    if a.peer:
        params["peer_from_other_run"] = a.peer
    repeated = {d: {k: v for k, v in m.items() if len(v) > 1}
                for d, m in turns.items() if d in DAEMONS}
    repeated = {d: m for d, m in repeated.items() if m}
    doc = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine,
           "params": params, "rows": rows, "raw": raw}
    if repeated:
        doc["turns"] = repeated

    head = ["metric", "unit", "mpathd", "multipathd", "ratio (mpathd/multipathd)"]
    table = [head]
    for r in rows:
        table.append([r["label"], r["unit"], fmt(r["mpathd"]), fmt(r["multipathd"]),
                      "-" if r["ratio"] is None else f"{r['ratio']:.2f}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print(" | ".join(c.ljust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))

    md = [f"Benchmark of {doc['date']}: {machine['guest']}; host {machine['host_cpu']}, "
          f"{machine['host_cores']} cores (shared); peer {machine['peer']}. "
          f"{a.luns} LUNs x 4 paths, {a.hot} LUNs hot-added. Lower is better; "
          "ratio < 1 means mpathd leads." + (
              f" multipathd's numbers come from another run ({a.peer})." if a.peer else ""),
          "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table[1:]:
        md.append("| " + " | ".join(row) + " |")
    # The warm-up: the same hot add with no daemon running, before either
    # daemon's turn.
    alone = num(raw.get("san", {}).get("hot_add_nodaemon_s"))
    if alone is not None and a.hot:
        line = f"warm-up hot add with no daemon running (until udev settled): {alone:g} s"
        print(line)
        md += ["", line[0].upper() + line[1:] + "."]
    def scaled(v, scale):
        x = num(v)
        return None if x is None else x * scale

    for key, label, _, scale in ROWS:
        per = [f"{d} {', '.join(fmt(scaled(v, scale)) for v in repeated[d][key])}"
               for d in DAEMONS
               if any(num(v) is not None for v in repeated.get(d, {}).get(key, []))]
        if per:
            line = (f"{label.format(luns=a.luns, hot=a.hot, steady=steady)}: mean of "
                    f"turns in run order, {'; '.join(per)}")
            print(line)
            md += ["", line[0].upper() + line[1:] + "."]
    with open(a.prefix + ".json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(a.prefix + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    print(f"\nwritten: {a.prefix}.json, {a.prefix}.md")


if __name__ == "__main__":
    main()
