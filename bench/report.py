#!/usr/bin/env python3
"""One report from every benchmark's results: bench/results/report.{md,json} and PNG plots.

    python3 bench/report.py [--results bench/results]

Reads what the bench scripts wrote (copy_bench, writeback_bench, node_read_bench,
cluster_read_bench, fanin_bench, mount_bench, connections_bench, limits), and lays the figures out as scenarios x
systems: the systems users run today (the store direct, a copy script, a FUSE mount, a caching
proxy) against Shoal. A cell nobody measured says so; a cell a system cannot fill says why.
"""
import argparse
import datetime
import json
import os
import statistics

SYSTEMS = ["store direct", "copy script", "rclone mount", "nginx proxy_cache", "Shoal"]
WRITEBACK_SYSTEMS = {"shoal cp (no cache)": "store direct", "dd + rclone copy": "copy script", "rclone mount": "rclone mount", "shoal (write-back)": "Shoal"}


class Figure:
    """Runs of one measurement: seconds (lower is better) or MiB/s or bytes (`better` says)."""

    def __init__(self, values, unit, better, source, note="", disk_bytes=0):
        self.values = [float(v) for v in values]
        self.unit, self.better, self.source, self.note = unit, better, source, note
        self.disk_bytes = disk_bytes  # a time to write this many bytes: shown against the disk's limit

    @property
    def median(self):
        return statistics.median(self.values)

    def text(self):
        fmt = (lambda v: f"{v / 2**20:.0f}") if self.unit == "MiB" else (lambda v: f"{v:.2f}" if v < 10 else f"{v:.1f}")
        unit = {"s": " s", "MiB/s": " MiB/s", "MiB": " MiB"}[self.unit]
        if len(self.values) == 1:
            return f"{fmt(self.median)}{unit} (1 run)"
        return f"{fmt(self.median)}{unit} ({fmt(min(self.values))}-{fmt(max(self.values))})"

    def advantage_over(self, other):
        """How many times better Shoal (self) is than `other`: > 1 means Shoal is better."""
        if self.better == "lower":
            return other.median / self.median if self.median else float("inf")
        return self.median / other.median if other.median else float("inf")

    def json(self):
        return {"values": self.values, "median": self.median, "min": min(self.values), "max": max(self.values),
                "unit": self.unit, "better": self.better, "source": self.source, "note": self.note}


class Cell:
    """A figure, or the reason there is none."""

    def __init__(self, figure=None, why=None):
        self.figure, self.why = figure, why


def load(results, name):
    path = os.path.join(results, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def rows_from(results):
    """[(scenario, metric, {system: Cell})] in report order, and a dict of the sources' notes."""
    rows, notes = [], {}
    na_write_proxy = Cell(why="n/a: a read cache; writes go around it to the store")
    not_yet = Cell(why="not measured yet")

    # --- checkpoint fan-out write ----------------------------------------------------------------
    wb = load(results, "writeback_bench")
    if wb:
        scen = f"checkpoint write, {wb['writers']} writers x {wb['size']}"
        notes[scen] = (f"writeback_bench: Azurite behind the shaping proxy ({wb['latency_ms']} ms to first byte, "
                       f"{wb['bandwidth_per_connection']} per connection), {wb['runs']} runs, {wb['date']}")
        for metric in ("unblock", "durable"):
            by = {}
            for t in wb["timings_s"]:
                if t["metric"] == metric:
                    by.setdefault(t["system"], []).append(t["seconds"])
            cells = {"store direct": not_yet, "rclone mount": not_yet, "nginx proxy_cache": na_write_proxy}
            for system, values in by.items():
                key = WRITEBACK_SYSTEMS.get(system)
                if key:
                    local = metric == "unblock" and key != "store direct"  # the others unblock on local disk
                    written = int(wb["writers"]) * _size_bytes(wb["size"]) if local else 0
                    cells[key] = Cell(Figure(values, "s", "lower", "writeback_bench", system, disk_bytes=written))
            rows.append((scen, f"time-to-{metric}", cells))
        cells = {s: not_yet for s in SYSTEMS} | {"nginx proxy_cache": na_write_proxy,
                                                 "store direct": Cell(why="yes: in the store before it unblocks")}
        for system, key in WRITEBACK_SYSTEMS.items():
            got = [r for r in wb.get("survived", []) if r["system"] == system]
            if got:
                whole = sum(1 for r in got if r["objects_in_store"] == r["of"])
                verdict = "yes" if whole == len(got) else "no" if whole == 0 else "sometimes"
                cells[key] = Cell(why=f"{verdict}: all {got[0]['of']} objects reached the store in {whole} of "
                                      f"{len(got)} runs (" + ", ".join(str(r["objects_in_store"]) for r in got) + ")")
        rows.append((scen, "survives the writer's host dying right after unblock", cells))

    # --- fan-out read, one reader through one node, cold and warm --------------------------------
    nr = load(results, "node_read_bench")
    if nr:
        size = f"{int(nr['size']) / 2**30:g} GiB" if int(nr["size"]) >= 2**30 else f"{int(nr['size']) >> 20} MiB"
        systems = {"curl -> nginx proxy_cache": "nginx proxy_cache", "shoal cat (no cache)": "store direct",
                   "rclone mount (vfs full)": "rclone mount"}
        for setting in ("raw", "shaped"):
            scen = f"read of one {size} object through a cache, Azurite {setting}"
            notes[scen] = (f"node_read_bench: {nr['runs']} runs, each from empty caches, {nr['date']}; Shoal is "
                           "`shoal cat --cache`, the store direct `shoal cat` without a cache, nginx read with curl")
            if setting == "shaped":
                notes[scen] += (f"; the proxy adds {nr.get('latency_ms')} ms to first byte and holds each connection "
                                f"to {nr.get('bandwidth_per_connection')}/s")
            for phase in ("cold", "warm"):
                cells = {"copy script": Cell(why="n/a: reads are not its job")}
                if phase == "warm":
                    cells["store direct"] = Cell(why="n/a: no cache, every read is cold (see cold)")
                for t in nr["timings_s"]:
                    if t["phase"] != f"{setting} {phase}":
                        continue
                    system = systems.get(t["reader"])
                    if t["reader"] == "shoal cat --cache":
                        system = "Shoal"
                    if system is None:
                        continue
                    cell = cells.get(system)
                    values = (cell.figure.values if cell and cell.figure else []) + [int(nr["size"]) / 2**20 / t["seconds"]]
                    cells[system] = Cell(Figure(values, "MiB/s", "higher", "node_read_bench", t["reader"]))
                rows.append((scen, f"{phase} read rate", cells))

    cr = load(results, "cluster_read_bench")
    if cr:
        scen = f"read spread over 4 nodes, each held to {int(cr['egress_limit']) >> 20} MiB/s"
        notes[scen] = f"cluster_read_bench: file:// backend, {cr['runs']} warm runs, {cr['date']}"
        for phase in ("cold", "warm"):
            r = cr["results"].get(f"4 nodes {phase}")
            if not r:
                continue
            cells = {s: Cell(why="n/a: one host, no cluster to spread over") for s in SYSTEMS}
            cells["nginx proxy_cache"] = Cell(why="n/a: a client reads one object from one cache server; "
                                                  "see the read through a cache")
            cells["Shoal"] = Cell(Figure(r["mib_s"], "MiB/s", "higher", "cluster_read_bench",
                                         f"{r['fraction_of_limit']:.2f} of the 4 nodes' combined limit"))
            rows.append((scen, f"{phase} read rate", cells))

    # --- fan-in ----------------------------------------------------------------------------------
    fi = load(results, "fanin_bench")
    if fi:
        scen = (f"fan-in: {fi['readers']} readers of one cold {int(fi['size']) >> 20} MiB object, "
                f"links {int(fi['egress_limit']) >> 20} MiB/s")
        notes[scen] = (f"fanin_bench: {fi['members']} member nodes, {fi['runs']} runs, {fi['date']}; "
                       f"ideal {fi['ideal_seconds']} s")
        names = {"Shoal, fan-in on": "Shoal", "nginx proxy_cache": "nginx proxy_cache",
                 "direct from the store": "store direct", "rclone mount per host": "rclone mount"}
        for metric, key, unit in (("completion time", "seconds", "s"), ("object-store bytes", "store_bytes", "MiB"),
                                  ("most bytes sent by one node", "busiest_node_bytes", "MiB")):
            cells = {"copy script": Cell(why="n/a: reads are not its job"), "rclone mount": not_yet}
            for name, system in names.items():
                r = fi["results"].get(name)
                if r and system in ("store direct", "rclone mount") and key == "busiest_node_bytes":
                    cells[system] = Cell(why="n/a: no node between readers and store")
                elif r and r.get(key) and all(v is not None for v in r[key]):
                    cells[system] = Cell(Figure(r[key], unit, "lower", "fanin_bench", name))
                elif r:
                    cells[system] = Cell(why="n/a: no node between readers and store")
            rows.append((scen, metric, cells))
        off = fi["results"].get("Shoal, fan-in off")
        if off:
            notes[scen] += (f"; Shoal with fan-in off: {statistics.median(off['seconds']):.1f} s")

    # --- scale-out -------------------------------------------------------------------------------
    one_host = Cell(why="n/a: one host, no cluster to join")
    cells = {"store direct": one_host, "copy script": one_host, "rclone mount": one_host,
             "nginx proxy_cache": Cell(why="n/a: independent caches, no membership: a server added behind a "
                                           "balancer starts empty"), "Shoal": not_yet}
    scen = "scale-out: a 4th node joins a warm cluster of 3"
    if cr and cr.get("scale_out_reread_bytes"):
        cells["Shoal"] = Cell(Figure(cr["scale_out_reread_bytes"], "MiB", "lower", "cluster_read_bench",
                                     "store bytes for the read after the join"))
        notes[scen] = (f"cluster_read_bench: one {int(cr['size']) >> 20} MiB object (file://), read once cold, then "
                       f"again after the join; {len(cr['scale_out_reread_bytes'])} runs, {cr['date']}")
    rows.append((scen, "object-store bytes re-read", cells))

    # --- direct copies (the store itself) --------------------------------------------------------
    cp = load(results, "copy_bench")
    if cp:
        for setting in ("raw", "shaped"):
            scen = f"copy of one {cp['size_arg']} object, Azurite {setting}"
            notes[scen] = f"copy_bench: {cp['runs']} runs, {cp['started']}"
            for direction in ("upload", "download"):
                cells = {"copy script": Cell(why="n/a: see store direct (rclone copy)"),
                         "rclone mount": Cell(why="n/a: see the files rows"),
                         "nginx proxy_cache": Cell(why="n/a: a single copy gains nothing from a cache")}
                for tool, system in (("rclone", "store direct"), ("shoal", "Shoal")):
                    vals = [m["mib_per_s"] for m in cp["measurements"]
                            if m["setting"] == setting and m["direction"] == direction and m["tool"] == tool]
                    if vals:
                        cells[system] = Cell(Figure(vals, "MiB/s", "higher", "copy_bench",
                                                    "rclone copyto" if tool == "rclone" else "shoal cp (no cache)"))
                rows.append((scen, f"{direction} rate", cells))

    # --- files ---------------------------------------------------------------------------------
    mb = load(results, "mount_bench")
    if mb:
        scen = f"files: one {mb['size']} file through a mount, warm on the node"
        notes[scen] = (f"mount_bench: {mb['runs']} runs, {mb['date']}; Shoal here is `shoal mount` through a node; "
                       "a write ends at close (both upload afterwards)")
        nbytes = _size_bytes(mb["size"])
        for phase in ("write", "read"):
            cells = {"store direct": Cell(why="n/a: not a file system (see the copy rows)"),
                     "copy script": Cell(why="n/a: not a file system"), "rclone mount": not_yet,
                     "nginx proxy_cache": Cell(why="n/a: not a file system")}
            for prefix, system in (("shoal mount", "Shoal"), ("rclone mount", "rclone mount")):
                vals = [nbytes / 2**20 / t["seconds"] for t in mb["timings_s"]
                        if t["phase"] == phase and t["system"].startswith(prefix)]
                if vals:
                    cells[system] = Cell(Figure(vals, "MiB/s", "higher", "mount_bench", f"{prefix}, dd bs=1M"))
            rows.append((scen, f"{phase} rate", cells))

    # --- many connections on one node ------------------------------------------------------------
    cn = load(results, "connections_bench")
    if cn:
        scen = f"one node holding {cn['idle']:,} idle + {cn['slow']:,} slow connections, warm read"
        notes[scen] = (f"connections_bench: {cn['runs']} runs, {cn['date']}; the node's threads alone/loaded "
                       f"{cn['threads_alone']}/{cn['threads_loaded']}, peak RSS {cn['rss_peak_kib'] // 1024} MiB, "
                       f"{cn['header_timeouts']} slow connections closed by the header timeout; "
                       f"loaded/alone {cn['ratio']:.2f}")
        others = {s: Cell(why="n/a: a property of the node alone") for s in SYSTEMS[:-1]}
        for phase, metric in (("alone", "warm read rate, no other connections"),
                              ("loaded", "warm read rate, connections held")):
            rows.append((scen, metric, dict(others, Shoal=Cell(Figure(cn["rates_mib_s"][phase], "MiB/s", "higher",
                                                                      "connections_bench", "shoal cat --cache")))))

    # --- two storage accounts, one throttling ----------------------------------------------------
    ac = load(results, "accounts_bench")
    if ac:
        scen = (f"two storage accounts through one node, {ac['files']} x {ac['size']} each, "
                f"one answering {ac['west_error_rate']:.0%} of requests 503")
        notes[scen] = (f"accounts_bench: {len(ac['east_rate_clean'])} runs; the healthy account's upload rate with the "
                       f"other throttling / with it clean: {ac['east_ratio']:.2f} (target >= 0.8)")
        others = {s: Cell(why="n/a: a property of the node alone") for s in SYSTEMS[:-1]}
        for key, metric in (("east_rate_clean", "healthy account's upload rate, the other clean"),
                            ("east_rate_faulty", "healthy account's upload rate, the other throttling")):
            rows.append((scen, metric, dict(others, Shoal=Cell(Figure([v / 2**20 for v in ac[key]], "MiB/s", "higher",
                                                                      "accounts_bench", "shoal cp --cache")))))
    return rows, notes


def _size_bytes(text):
    units = {"": 1, "K": 1000, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    digits = "".join(c for c in text if c.isdigit())
    return int(digits) * units[text[len(digits):].rstrip("B")]


def markdown(rows, notes, limits, floor=None):
    out = ["# Shoal against what users run today", ""]
    out.append("Each cell: median (min-max) over the runs. The `Shoal vs` columns say how many times better "
               "Shoal did than that system (above 1: Shoal better; times and bytes lower is better, rates higher). "
               "A cell without a figure says why.")
    if limits:
        out += ["", "Machine limits, measured by `bench/limits.sh` " + f"({limits['date']}, {limits['cores']} cores): "
                f"loopback TCP {limits['loopback_mib_s']['1_stream']:.0f} MiB/s on one stream, "
                f"{limits['loopback_mib_s']['4_streams']:.0f} on four (iperf3); disk sequential write "
                f"{limits['disk_mib_s']['seq_write']:.0f} MiB/s, read {limits['disk_mib_s']['seq_read']:.0f} "
                "(fio, direct I/O). Rates below also give their fraction of the loopback limit (1 stream), and "
                "times to unblock a checkpoint the fraction of the disk's write rate they amount to."]
        pages = limits.get("page_cache_write_mib_s")
        if pages:
            out[-1] += (f" Memory: buffered writes into pages the kernel must find run at {pages['new_pages']:.0f} "
                        f"MiB/s, into pages it holds at {pages['held_pages']:.0f}; every byte a cache keeps that it "
                        "did not have pays the first rate (a cold read through a cache, a write), a reader that keeps "
                        "nothing pays neither.")
    if floor:
        by = {}
        for t in floor["timings_s"]:
            by.setdefault(t["read"], []).append(t["seconds"])
        nbytes = _size_bytes(floor["size"])
        rate = {k: nbytes / 2**20 / statistics.median(v) for k, v in by.items()}
        out += ["", f"What the kernel's FUSE path costs here (`bench/fuse_floor.sh`, {floor['date']}): a "
                f"{floor['size']} file already in memory reads at {rate.get('dd, no FUSE', 0):.0f} MiB/s with dd, and at "
                f"{rate.get('passthrough_ll, page cache', 0):.0f} MiB/s through libfuse's own passthrough_ll example "
                f"({rate.get('passthrough_ll, direct_io', 0):.0f} with direct_io), whose server does nothing but copy. "
                "Any mount's reads meet that wall."]
    scenario = None
    for scen, metric, cells in rows:
        if scen != scenario:
            scenario = scen
            out += ["", f"## {scen}", ""]
            if scen in notes:
                out += [notes[scen], ""]
            out.append("| metric | " + " | ".join(SYSTEMS) + " | " +
                       " | ".join(f"Shoal vs {s}" for s in SYSTEMS[:-1]) + " |")
            out.append("|---" * (2 * len(SYSTEMS)) + "|")
        texts, ratios = [], []
        shoal = cells.get("Shoal")
        for s in SYSTEMS:
            c = cells.get(s, Cell(why="not measured yet"))
            if c.figure:
                t = c.figure.text()
                if limits and c.figure.unit == "MiB/s":
                    t += f", {c.figure.median / limits['loopback_mib_s']['1_stream']:.2f} of loopback"
                if limits and c.figure.disk_bytes:
                    rate = c.figure.disk_bytes / 2**20 / c.figure.median
                    t += f", {rate / limits['disk_mib_s']['seq_write']:.2f} of the disk's write rate"
                texts.append(t)
            else:
                texts.append(c.why)
        for s in SYSTEMS[:-1]:
            c = cells.get(s)
            if shoal and shoal.figure and c and c.figure:
                ratios.append(f"{shoal.figure.advantage_over(c.figure):.2f}")
            else:
                ratios.append("")
        out.append(f"| {metric} | " + " | ".join(texts) + " | " + " | ".join(ratios) + " |")
    return "\n".join(out) + "\n"


def summary(rows):
    """The short table for the README: per scenario and metric, Shoal's figure and the ratios."""
    out = ["| scenario | metric | Shoal | " + " | ".join(f"vs {s}" for s in SYSTEMS[:-1]) + " |",
           "|---|---|---|" + "---|" * (len(SYSTEMS) - 1)]
    for scen, metric, cells in rows:
        shoal = cells.get("Shoal")
        if shoal is None:
            continue
        mine = shoal.figure.text() if shoal.figure else shoal.why
        ratios = []
        for s in SYSTEMS[:-1]:
            c = cells.get(s)
            if shoal.figure and c and c.figure:
                ratios.append(f"{shoal.figure.advantage_over(c.figure):.2f}x")
            elif c and c.why and not c.why.startswith("n/a") and c.why != "not measured yet":
                ratios.append(c.why.split(":")[0])  # a verdict (yes/no), not a figure
            else:
                ratios.append("")
        out.append(f"| {scen} | {metric} | {mine} | " + " | ".join(ratios) + " |")
    return "\n".join(out) + "\n"


def update_readme(path, table, when):
    """Replaces the table between the README's bench markers, if it has them."""
    begin, end = "<!-- bench:summary:begin -->", "<!-- bench:summary:end -->"
    if not os.path.exists(path):
        return False
    text = open(path).read()
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    body = (f"\n{table}\nFrom `make bench` on {when} (this machine: 2 cores); every figure with its runs, "
            "min-max and the machine's limits in [bench/results/report.md](bench/results/report.md).\n")
    open(path, "w").write(head + begin + body + end + tail)
    return True


def plots(rows, outdir):
    """One bar chart per scenario (median, min-max as error bars); returns the files written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):  # plots of an earlier run's scenarios would linger
        if old.endswith(".png"):
            os.remove(os.path.join(outdir, old))
    written = []
    by_scen = {}
    for scen, metric, cells in rows:
        by_scen.setdefault(scen, []).append((metric, cells))
    for i, (scen, metrics) in enumerate(by_scen.items()):
        metrics = [(m, c) for m, c in metrics if any(x.figure for x in c.values())]
        if not metrics:
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
        for ax, (metric, cells) in zip(axes[0], metrics):
            names = [s for s in SYSTEMS if cells.get(s) and cells[s].figure]
            figs = [cells[s].figure for s in names]
            scale = 2**20 if figs[0].unit == "MiB" else 1
            med = [f.median / scale for f in figs]
            lo = [(f.median - min(f.values)) / scale for f in figs]
            hi = [(max(f.values) - f.median) / scale for f in figs]
            colors = ["#1f77b4" if n == "Shoal" else "#999999" for n in names]
            ax.bar(range(len(names)), med, yerr=[lo, hi], color=colors, capsize=4)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
            ax.set_title(metric, fontsize=9)
            ax.set_ylabel(figs[0].unit)
        fig.suptitle(scen, fontsize=10)
        fig.tight_layout()
        name = f"{i:02d}-" + "".join(c if c.isalnum() else "-" for c in scen.lower())[:60].strip("-") + ".png"
        fig.savefig(os.path.join(outdir, name), dpi=90)
        plt.close(fig)
        written.append(name)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="bench/results", help="where the bench scripts wrote (default %(default)s)")
    ap.add_argument("--readme", default="README.md",
                    help="README whose table between its bench:summary markers is replaced (default %(default)s; "
                         "'' for none)")
    args = ap.parse_args()
    rows, notes = rows_from(args.results)
    limits = load(args.results, "limits")
    md = markdown(rows, notes, limits, load(args.results, "fuse_floor"))
    pngs = plots(rows, os.path.join(args.results, "plots"))
    if pngs:
        md += "\n## Plots\n\n" + "\n".join(f"![{p}](plots/{p})" for p in pngs) + "\n"
    md += f"\nGenerated {datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')} by `python3 bench/report.py`.\n"
    open(os.path.join(args.results, "report.md"), "w").write(md)
    report = {"systems": SYSTEMS, "limits": limits, "rows": [
        {"scenario": s, "metric": m, "cells": {k: (c.figure.json() if c.figure else {"why": c.why}) for k, c in cells.items()}}
        for s, m, cells in rows]}
    json.dump(report, open(os.path.join(args.results, "report.json"), "w"), indent=1)
    table = summary(rows)
    open(os.path.join(args.results, "summary.md"), "w").write(table)
    if args.readme:
        update_readme(args.readme, table, datetime.datetime.utcnow().strftime("%Y-%m-%d"))
    print(md)


if __name__ == "__main__":
    main()
