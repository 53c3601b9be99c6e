"""Tables and a plot of a ``bench_decode_layer.py`` result file (run here, not on the device).

    python benchmarks/plot_decode_layer.py RESULTS.json [IMAGE]

Prints two Markdown tables (per case: step, sum of parts, ratio; per op: µs in
every case) for docs/perf.md; with IMAGE also draws, per case, the graph-replayed
step next to its parts stacked by group (left, one µs axis per batch size) and
the ratio step / sum of parts (right). Only the drawing needs matplotlib.
"""

from __future__ import annotations

import json
import sys

# Op groups of the plot, by part name (bench_decode_layer.MODULE_PARTS and its extras).
GROUPS = {
    "attention projections + absorbed bmm": (
        "q_a_proj", "kv_a_proj", "q_b_proj", "o_proj", "absorbed bmm q_nope x W_UK", "absorbed bmm o x W_UV"),
    "indexer projections": ("indexer wq_b", "indexer wk", "indexer weights_proj"),
    "indexer top-k": ("indexer (key store, q quant, decode scores, top-k)",),
    "sparse MLA": ("sparse MLA (KV store, slot map, decode)",),
    "norms, RoPE, Hadamard, metadata": (
        "input RMSNorm", "q_a RMSNorm", "kv_a RMSNorm", "indexer k LayerNorm", "post-attention add + RMSNorm",
        "MLA RoPE", "indexer RoPE", "DSA metadata (in-graph refresh)",
        "indexer Hadamard (q, k)"),  # a part of reports from before the Hadamard moved into the FP8 kernels
    "router (gate + TopK)": ("router gate (fp32)", "router TopK (grouped)"),
    "routed experts": ("routed experts (fused MoE)",),
    "shared expert": ("shared expert",),
}
OTHER = "other"


def group_of(name: str) -> str:
    return next((group for group, names in GROUPS.items() if name in names), OTHER)


def _cases(report: dict) -> list[dict]:
    return [c for c in report["cases"] if "step_us" in c]


def _label(case: dict) -> str:
    context = case["context"]
    return f"B={case['batch']} C={context // 1024}K" if context % 1024 == 0 else f"B={case['batch']} C={context}"


def _us(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_table(report: dict) -> str:
    """One row per case: step, sum of parts, ratio, graph-vs-eager error, the three largest parts."""
    rows = ["| batch | context | step (graph) µs | sum of parts µs | ratio | graph vs eager | largest parts (µs) |",
            "|---|---|---|---|---|---|---|"]
    for case in report["cases"]:
        if "step_us" not in case:
            why = case.get("error", "?").splitlines()[-1][:80]
            rows.append(f"| {case['batch']} | {case['context']} | not run: {why} | | | | |")
            continue
        timed = sorted((p for p in case["parts"] if "us" in p), key=lambda p: -p["us"])[:3]
        largest = ", ".join(f"{p['name']} {p['us']:.1f}" for p in timed)
        ratio = "-" if case["ratio"] is None else f"**{case['ratio']:.2f}**"
        note = "" if case.get("complete", True) else " (parts missing)"
        rows.append(f"| {case['batch']} | {case['context']} | {_us(case['step_us'])} | "
                    f"{_us(case['parts_sum_us'])}{note} | {ratio} | {case['graph_vs_eager_rel_err']:.1e} | {largest} |")
    return "\n".join(rows)


def parts_table(report: dict) -> str:
    """One row per op (details indented under their part), one column per case, µs."""
    cases = _cases(report)
    if not cases:
        return ""
    names = [p["name"] for p in cases[0]["parts"]]
    details = [(d["name"], d["within"]) for d in cases[0]["details"]]
    rows = ["| op | " + " | ".join(_label(c) for c in cases) + " |", "|---" * (len(cases) + 1) + "|"]

    def row(label, name, key):
        values = []
        for case in cases:
            entry = next((e for e in case[key] if e["name"] == name), {})
            values.append(_us(entry.get("us")) if "error" not in entry else "failed")
        rows.append(f"| {label} | " + " | ".join(values) + " |")

    for name in names:
        row(name, name, "parts")
        for detail, within in details:
            if within == name:
                row(f"&nbsp;&nbsp;of which {detail}", detail, "details")
    rows.append("| **sum of parts** | " + " | ".join(_us(c["parts_sum_us"]) for c in cases) + " |")
    rows.append("| **step (graph)** | " + " | ".join(_us(c["step_us"]) for c in cases) + " |")
    return "\n".join(rows)


def plot(report: dict, dst: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = _cases(report)
    batches = sorted({c["batch"] for c in cases})
    groups = list(GROUPS) + [OTHER]
    colors = dict(zip(groups, plt.get_cmap("tab10").colors))
    fig = plt.figure(figsize=(15, 2.2 + 1.8 * len(batches)))
    grid = fig.add_gridspec(len(batches), 2, width_ratios=[3, 1])
    for row, batch in enumerate(batches):  # one linear µs axis per batch size: B=1 and B=128 differ ~10x
        ax = fig.add_subplot(grid[row, 0])
        mine = [c for c in cases if c["batch"] == batch]
        y = range(len(mine))
        ax.barh([i - 0.2 for i in y], [c["step_us"] for c in mine], height=0.38, color="black",
                label="step (one graph)")
        left = [0.0] * len(mine)
        for group in groups:
            widths = [sum(p.get("us", 0.0) for p in c["parts"] if group_of(p["name"]) == group) for c in mine]
            ax.barh([i + 0.2 for i in y], widths, left=left, height=0.38, color=colors[group], label=group)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_yticks(list(y), [_label(c) for c in mine])
        ax.invert_yaxis()
        if row == 0:
            meta = report["meta"]
            ax.set_title(f"DeepSeek-V3.2 MoE decoder layer, decode step, {meta['device']} ({meta['kv_cache_dtype']} "
                         f"KV, DSA decode {meta['dsa_decode']}): step vs its ops each in its own graph", fontsize=10)
        if row == len(batches) - 1:
            ax.set_xlabel("µs")
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, fontsize=8, loc="lower left", ncol=5)
    ax = fig.add_subplot(grid[:, 1])
    ratios = [c["ratio"] or 0 for c in cases]
    y = range(len(cases))
    ax.barh(list(y), ratios, color="tab:gray")
    ax.axvline(1.0, color="k", lw=1)
    for i, v in enumerate(ratios):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_yticks(list(y), [_label(c) for c in cases])
    ax.invert_yaxis()
    ax.set_xlabel("step / sum of parts")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(dst, dpi=110)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2:
        raise SystemExit(__doc__)
    report = json.load(open(argv[0]))
    print(summary_table(report), end="\n\n")
    print(parts_table(report))
    if len(argv) == 2:
        plot(report, argv[1])


if __name__ == "__main__":
    main()
