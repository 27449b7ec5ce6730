"""An independent implementation of Mack's (1993) standard errors, for the tests only.

Written from the closed formulas of the papers, not from the engine's code, and in
another form: the engine uses Mack's (1999) recursion and sums the shared parameter
error period by period; this uses Mack's (1993, Theorem 3 and its corollary) closed
form per origin and the double sum over pairs of origins for the total:

    mse(R_i) = Ĉ_iI² Σ_k σ_k² / f_k² · (1 / Ĉ_ik^α + 1 / S_k)        (α = 1: Mack 1993)
    mse(R)   = Σ_i mse(R_i) + 2 Σ_{i<j} Ĉ_iI Ĉ_jI Σ_{k ∈ both} σ_k² / (f_k² S_k)

with S_k = Σ w C_ik^α over the link ratios used, f_k = Σ w C^α F / S_k, σ_k² =
Σ w C^α (F − f_k)² / (n_k − 1), and, where a period has one ratio, Mack's rule
σ² = min(σ⁴(k−1) / σ²(k−2), σ²(k−2), σ²(k−1)). Periods are where both ages are observed;
the process term uses Ĉ_ik^(2−α) / Ĉ_ik² = 1 / Ĉ_ik^α.

Mack, T. (1993), "Distribution-free calculation of the standard error of chain ladder
reserve estimates", ASTIN Bulletin 23(2), 213-225; Mack, T. (1999), "The standard error
of chain ladder reserve estimates: recursive calculation and inclusion of a tail
factor", ASTIN Bulletin 29(2), 361-366.
"""

from __future__ import annotations


def mack_1993(rows, alpha=1, used=None):
    """Return (ultimates, per-origin s.e., total s.e.) of cumulative ``rows``.

    ``rows[i]`` lists origin i's cumulative values from the first age (None before a
    late first value); ``used(i, k)`` says whether the link ratio of origin i from age
    index k is used (default: every defined one). A per-origin s.e. is None where a
    needed sigma cannot be estimated.
    """
    n_ages = max(len(row) for row in rows)
    if used is None:

        def used(i, k):
            return True

    pairs = {}
    for k in range(n_ages - 1):
        pairs[k] = [
            (rows[i][k], rows[i][k + 1])
            for i in range(len(rows))
            if k + 1 < len(rows[i])
            and rows[i][k] not in (None, 0)
            and rows[i][k + 1] not in (None, 0)
            and used(i, k)
        ]
    f, s, sigma2 = {}, {}, {}
    for k, items in pairs.items():
        weight = sum(c**alpha for c, _ in items)
        s[k] = weight
        f[k] = sum(c**alpha * (d / c) for c, d in items) / weight if items and weight else 1.0
        if len(items) >= 2:
            sigma2[k] = sum(c**alpha * (d / c - f[k]) ** 2 for c, d in items) / (len(items) - 1)
        elif k >= 2 and sigma2.get(k - 1) is not None and sigma2.get(k - 2) is not None:
            a, b = sigma2[k - 2], sigma2[k - 1]
            sigma2[k] = min(b * b / a, a, b) if a > 0 else min(a, b)
        else:
            sigma2[k] = None

    ultimates, projections, futures = [], [], []
    for row in rows:
        latest_index = len(row) - 1
        projected = {latest_index: row[-1]}
        for k in range(latest_index, n_ages - 1):
            projected[k + 1] = projected[k] * f[k]
        projections.append(projected)
        ultimates.append(projected[n_ages - 1])
        futures.append(list(range(latest_index, n_ages - 1)))

    errors = []
    for i in range(len(rows)):
        total = 0.0
        for k in futures[i]:
            c = projections[i][k]
            if c == 0:
                continue
            if sigma2[k] is None or not s[k]:
                total = None
                break
            total += sigma2[k] / f[k] ** 2 * (1 / c**alpha + 1 / s[k])
        errors.append(None if total is None else (ultimates[i] ** 2 * total) ** 0.5)

    if any(error is None for error in errors):
        return ultimates, errors, None
    mse = sum(error**2 for error in errors)
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            common = set(futures[i]) & set(futures[j])
            shared = sum(sigma2[k] / (f[k] ** 2 * s[k]) for k in common if s[k])
            mse += 2 * ultimates[i] * ultimates[j] * shared
    return ultimates, errors, mse**0.5
