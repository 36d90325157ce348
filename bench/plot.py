"""PNG plots of the benchmark (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.stats import pct  # noqa: E402


def latency_plot(results: dict, samples: list, out: Path) -> None:
    levels = [lv["users"] for lv in results["levels"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))

    ax = axes[0]
    for path, style in (("gateway", "-"), ("rasa", "--")):
        for q, color in ((50, "tab:blue"), (95, "tab:orange"), (99, "tab:red")):
            ys = [lv[path][f"p{q}_ms"] for lv in results["levels"]]
            ax.plot(levels, ys, style, marker="o", color=color, label=f"{path} p{q}")
    ax.axhline(5000, color="grey", lw=0.8, ls=":")
    ax.text(levels[0], 5200, "WeChat 5 s window", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(levels)
    ax.set_xticklabels([str(x) for x in levels])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency: WeChat gateway (solid) vs Rasa REST (dashed)")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1]
    for lv in results["levels"]:
        lat = sorted(s["latency_s"] * 1000 for s in samples
                     if s["users"] == lv["users"] and s["path"] == "gateway" and not s["error"])
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=f"{lv['users']} users")
    ax.set_xscale("log")
    ax.set_xlabel("gateway latency (ms)")
    ax.set_ylabel("share of messages")
    ax.set_title("Gateway latency distribution")
    ax.legend(fontsize=8)

    ax = axes[2]
    names = list(results["memory_peak_mb"].keys())
    width = 0.8 / max(1, len(levels))
    for i, lv in enumerate(results["levels"]):
        ax.bar([j + i * width for j in range(len(names))], [lv["memory_peak_mb"].get(n, 0) or 0 for n in names],
               width, label=f"{lv['users']} users")
    ax.set_xticks([j + width * (len(levels) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels(names)
    ax.set_ylabel("peak RSS (MB)")
    ax.set_title("Peak memory per process")
    ax.legend(fontsize=8)

    fig.suptitle(f"County eco-bot benchmark ({results['machine']['cpus']} CPUs, {results['started_at']})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def soak_plot(results: dict, samples: list, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    ax = axes[0]
    for name, series in results["memory_series_mb"].items():
        ax.plot([t / 60 for t, _ in series], [mb for _, mb in series], marker=".", label=name)
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax.set_yscale("log")
    ax.set_title("Memory during the soak (every 10 s)")
    ax.legend(fontsize=8)

    ax = axes[1]
    buckets: dict[int, list[float]] = {}
    for s in samples:
        if not s["error"]:
            buckets.setdefault(int(s["t"] // 60), []).append(s["latency_s"] * 1000)
    mins = sorted(buckets)
    for q in (50, 95, 99):
        ax.plot([m + 0.5 for m in mins], [pct(buckets[m], q) for m in mins], marker="o", label=f"p{q}")
    ax.set_xlabel("minute")
    ax.set_ylabel("gateway latency (ms)")
    ax.set_title("Latency per minute")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
