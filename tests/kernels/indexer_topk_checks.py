"""Checks shared by the indexer tests: is a top-k row a correct selection?

Ties make the chosen positions ambiguous, so a row is judged by what it must
satisfy, not by equality with another implementation's row.
"""

import torch


def brute_force_scores(q, k, k_scale, weights):
    """Loop-by-loop ``I[t, s] = k_scale[s] * sum_h w[t, h] * relu(q[t, h] . k[s])`` in float64."""
    q64, k64, w64 = q.double(), k.double(), weights.double()
    out = torch.zeros(q.shape[0], k.shape[0], dtype=torch.float64)
    for t in range(q.shape[0]):
        for s in range(k.shape[0]):
            total = 0.0
            for h in range(q.shape[1]):
                total += float(w64[t, h]) * max(0.0, float(q64[t, h] @ k64[s]))
            out[t, s] = total * (1.0 if k_scale is None else float(k_scale[s]))
    return out


def assert_topk_row(row, scores, start, end, topk, atol=1e-5, rtol=1e-5):
    """``row`` (int ``[topk]``) must hold a best-``topk`` set of ``[start, end)`` by ``scores``.

    Valid positions come first, then -1; the set has min(topk, end - start) distinct
    in-range positions; its sorted scores equal the best scores (a multiset match,
    so any tie-break passes) and no left-out position beats a chosen one.
    """
    row = row.long().cpu()
    scores = scores.double().cpu()
    start, end = max(0, int(start)), max(0, int(end))
    want = min(topk, max(0, end - start))
    valid = row >= 0
    assert valid[:want].all() and not valid[want:].any(), f"expected {want} packed valid entries, got {row.tolist()}"
    chosen = row[:want]
    assert len(set(chosen.tolist())) == want, "duplicate positions"
    assert ((chosen >= start) & (chosen < end)).all(), f"positions outside [{start}, {end})"
    if want == 0:
        return
    got = scores[chosen].sort(descending=True).values
    best = scores[start:end].sort(descending=True).values[:want]
    torch.testing.assert_close(got, best, atol=atol, rtol=rtol)
    left_out = torch.ones(end - start, dtype=torch.bool)
    left_out[chosen - start] = False
    if left_out.any():
        assert scores[start:end][left_out].max() <= got.min() + atol + rtol * abs(float(got.min()))
