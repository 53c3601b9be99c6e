"""Plot a ``bench_sparse_mla.py`` result file (run here, not on the device).

    python benchmarks/plot_sparse_mla.py benchmarks/results/sparse_mla_h200.json docs/perf_sparse_mla.png

Left: our time over FlashMLA's for every default-config shape (lower is
better; dashed lines are issue 5's targets). Right: achieved throughput, in
TFLOP/s for prefill and H=128 decode, in GB/s of gathered cache for H=16.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label(row):
    kind = {"prefill": "prefill", "decode_fp8": "dec FP8", "decode_bf16": "dec bf16"}[row["section"]]
    return f"{kind} {row['shape'].replace(' topk=2048', '').replace(' s_q=1', '')}"


def main(src, dst):
    rows = [r for r in json.load(open(src)) if "shape" in r and r.get("note", "").startswith("default")]
    peers = [r for r in rows if r["flashmla_ms"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 7.5))
    names = [label(r) for r in peers]
    ratios = [r["ratio_ours_over_flashmla_time"] for r in peers]
    colors = ["tab:blue" if r["section"] == "prefill" else "tab:orange" if r["section"] == "decode_fp8" else "tab:green"
              for r in peers]
    ax1.barh(names, ratios, color=colors)
    ax1.axvline(1.0, color="k", lw=1)
    ax1.axvline(1.3, color="tab:orange", ls="--", lw=1, label="decode FP8 target 1.3x")
    ax1.axvline(1 / 0.7, color="tab:blue", ls="--", lw=1, label="prefill target 0.7x throughput")
    for y, v in enumerate(ratios):
        ax1.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax1.set_xlabel("our time / FlashMLA time (lower is better)")
    ax1.set_title("Triton sparse MLA vs FlashMLA (sgl-flash-mla 1.0.0), H200")
    ax1.invert_yaxis()
    ax1.legend(fontsize=8, loc="lower right")

    flop_rows = [r for r in rows if "H=16" not in r["shape"]]
    y = range(len(flop_rows))
    ax2.barh([i - 0.2 for i in y], [r["ours_tflops"] for r in flop_rows], height=0.4, label="ours")
    ax2.barh([i + 0.2 for i in y], [r["flashmla_tflops"] or 0 for r in flop_rows], height=0.4, label="FlashMLA")
    ax2.set_yticks(list(y), [label(r) for r in flop_rows])
    ax2.set_xlabel("TFLOP/s (2*H*topk*(576+512) per query row)")
    ax2.invert_yaxis()
    bw = [r for r in rows if "H=16" in r["shape"]]
    text = "H=16 decode, gathered-cache bandwidth (HBM ~4300 GB/s):\n" + "\n".join(
        f"{label(r)}: ours {r['ours_gbs']:.0f} GB/s" + (f", FlashMLA (64 heads) {r['flashmla_gbs']:.0f}" if r["flashmla_gbs"] else "")
        for r in bw)
    fig.text(0.99, 0.01, text, ha="right", va="bottom", fontsize=8)
    ax2.legend(fontsize=8, loc="upper right")
    ax2.set_title("achieved throughput")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
