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
    ("cold_udev_settled_s", "cold start: until udev has handled every event it caused", "s", 1),
    ("hot_add_s", "hot add: {hot} LUNs x 4 paths at once, all maps complete", "s", 1),
    ("hot_add_cpu_s", "hot add: daemon CPU", "s", 1),
    ("hot_add_map_loads", "hot add: table loads (creates + reloads)", "", 1),
    ("reinstate_median_s", "reinstate: path back to running -> dm active, median", "s", 1),
    ("reinstate_max_s", "reinstate: max", "s", 1),
    ("iofail_seen_median_s", "I/O error: dm fails path -> daemon shows failed, median", "s", 1),
    ("iofail_seen_max_s", "I/O error: max", "s", 1),
    ("failover_stall_median_ms", "I/O failover (reader on the map; active paths offline): longest stall, median", "ms", 1),
    ("failover_stall_max_ms", "I/O failover: longest stall, max", "ms", 1),
    ("failover_read_errors", "I/O failover: failed reads, all tries", "", 1),
    ("allpaths_resume_median_s", "all paths down 5 s then back (queueing): reads resume after, median", "s", 1),
    ("allpaths_resume_max_s", "all paths down 5 s then back: reads resume after, max", "s", 1),
    ("allpaths_read_errors", "all paths down 5 s then back: failed reads, all tries", "", 1),
    ("steady_cpu_s", "steady state: CPU per 60 s, all paths healthy", "s", 1),
    ("rss_peak_kb", "peak RSS (VmHWM)", "MiB", 1 / 1024),
    # mpathd answers queries from a published snapshot; multipathd builds
    # the answer live, under the lock its other threads take.
    ("topo_idle_median_ms", "show topology, idle (mpathd: snapshot, multipathd: live): median of answered", "ms", 1),
    ("topo_idle_p99_ms", "show topology, idle: p99 of answered", "ms", 1),
    ("topo_idle_failed", "show topology, idle: failed or timed out", "of n", 1),
    ("topo_reconf_median_ms", "show topology, reconfigure every {reconf_s} s (snapshot vs live): median of answered", "ms", 1),
    ("topo_reconf_p99_ms", "show topology, reconfigure every {reconf_s} s: p99 of answered", "ms", 1),
    ("topo_reconf_failed", "show topology, reconfigure every {reconf_s} s: failed or timed out", "of n", 1),
    ("topo_reconf_secs", "show topology, reconfigure every {reconf_s} s: length of the row", "s", 1),
    ("topo_reconf_count", "reconfigures answered ok during that row", "of n", 1),
]
# Rows whose value is a count out of the row's requests.
OF_N = {"topo_idle_failed": "topo_idle_n", "topo_reconf_failed": "topo_reconf_n",
        "topo_reconf_count": "topo_reconf_sent"}
# Rows that describe the measurement rather than rank the daemons.
NO_VERDICT = {"topo_reconf_secs"}
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
    ap.add_argument("--reconf-ms", type=int, default=2000)
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

    # Reconfigures sent = answered ok + failed, per turn.
    for m in turns.values():
        ok, bad = m.get("topo_reconf_count", []), m.get("topo_reconf_count_failed", [])
        if ok and len(ok) == len(bad):
            m["topo_reconf_sent"] = [str((num(o) or 0) + (num(b) or 0)) for o, b in zip(ok, bad)]

    if a.peer:
        with open(a.peer, encoding="utf-8") as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] == "multipathd":
                    raw.setdefault("multipathd", {})[w[1]] = w[2]

    steady = raw.get("mpathd", {}).get("steady_secs") or raw.get("multipathd", {}).get(
        "steady_secs") or "60"

    def label_of(label):
        return label.format(luns=a.luns, hot=a.hot, steady=steady,
                            reconf_s=f"{a.reconf_ms / 1000:g}")

    rows = []
    for key, label, unit, scale in ROWS:
        vals, spread, of_n = {}, {}, {}
        for d in DAEMONS:
            got = [x * scale for x in map(num, turns.get(d, {}).get(key, [])) if x is not None]
            vals[d] = sum(got) / len(got) if got else None
            spread[d] = (max(got) - min(got)) if len(got) > 1 else None
            if key in OF_N:
                n = [x for x in map(num, turns.get(d, {}).get(OF_N[key], [])) if x is not None]
                of_n[d] = sum(n) / len(n) if n else None
        if key.startswith("hot_add") and a.hot == 0:
            continue  # no hot add in this run
        ratio = None
        if (vals["mpathd"] is not None and vals["multipathd"] and key not in OF_N
                and key not in NO_VERDICT):
            ratio = vals["mpathd"] / vals["multipathd"]
        # A difference within either daemon's own spread between turns is
        # a tie; with one turn each, the spread is unknown.
        verdict = "-"
        if ratio is not None:
            sp = [s for s in spread.values() if s is not None]
            diff = abs(vals["mpathd"] - vals["multipathd"])
            if len(sp) == 2 and diff <= max(sp):
                verdict = "tie (within own spread)"
            else:
                verdict = "mpathd leads" if ratio < 1 else "multipathd leads" if ratio > 1 else "tie"
                if len(sp) < 2:
                    verdict += " (one turn: spread unknown)"
        rows.append({
            "metric": key,
            "label": label_of(label),
            "unit": unit,
            "mpathd": vals["mpathd"],
            "multipathd": vals["multipathd"],
            "of_n": of_n or None,
            "ratio": ratio,
            "verdict": verdict,
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

    head = ["metric", "unit", "mpathd", "multipathd", "ratio (mpathd/multipathd)", "verdict"]
    table = [head]

    def cell(r, d):
        if r["of_n"] is not None:
            n = r["of_n"].get(d)
            return "-" if r[d] is None or n is None else f"{r[d]:g} of {n:g}"
        return fmt(r[d])

    for r in rows:
        table.append([r["label"], "" if r["of_n"] else r["unit"], cell(r, "mpathd"),
                      cell(r, "multipathd"),
                      "-" if r["ratio"] is None else f"{r['ratio']:.2f}", r["verdict"]])
    shas = {d: raw.get(d, {}).get("tables_sha") for d in DAEMONS}
    same_tables = None
    if all(shas.values()):
        same_tables = len(set(shas.values())) == 1
        doc["same_tables"] = same_tables
    if same_tables is False:
        print(f"WARNING: the daemons built different tables ({shas}): rows compare unlike work")
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print(" | ".join(c.ljust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))

    md = [f"Benchmark of {doc['date']}: {machine['guest']}; host {machine['host_cpu']}, "
          f"{machine['host_cores']} cores (shared); peer {machine['peer']}. "
          f"{a.luns} LUNs x 4 paths, {a.hot} LUNs hot-added. Lower is better; "
          "ratio < 1 means mpathd leads; a failed or timed-out request is counted "
          "in its own row, never as a latency." + (
              "" if same_tables is None else
              " Both daemons built the same tables." if same_tables else
              " WARNING: the daemons built different tables: rows compare unlike work.") + (
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
    claims = num(raw.get("san", {}).get("claim_warmup_s"))
    if claims is not None:
        line = (f"warm-up cold start before the turns, so every turn finds the paths claimed"
                f" by udev (until udev settled and the maps were gone): {claims:g} s")
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
            line = (f"{label_of(label)}: mean of "
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
