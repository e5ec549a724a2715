"""lottery_nb.claims on hand-made numbers: for every claim a clear yes, a clear no, a margin inside the resolution
(undecided), the value exactly at the threshold, and a seeded (deterministic) bootstrap."""
import numpy as np
import pytest

from lottery_nb.config import LotteryError
from lottery_nb.claims import (Verdict, decide, dense_epsilon, dense_threshold, error_resolution, bootstrap_margin, matching,
                               path_barriers, linearly_connected, lcs_membership, iff_segments, iff_agreement, adaptive_saving,
                               no_worse_than, share_at_most, rewind_better, matching_levels, matching_run, sparsest_matching,
                               deeper_matching,
                               all_hold, negate, share_hold, claims_markdown, n_test_for_resolution, error_sampling_std)

DENSE = [0.060, 0.062, 0.058, 0.064]        # mean 6.1%, ε = 0.258 points (ddof=1), threshold 6.358%
EPS = float(np.std(DENSE, ddof=1))
BETAS = np.linspace(0, 1, 11)


def test_epsilon_is_the_sample_std_of_the_dense_errors():
    assert dense_epsilon(DENSE) == pytest.approx(0.0025819889)
    assert dense_threshold(DENSE) == pytest.approx(0.061 + 0.0025819889)
    assert dense_epsilon([0.07]) == 0.0 and error_resolution(1000) == 0.001 and error_resolution(None) == 0.0


def test_decision_rule():
    assert decide(0.0021, 0.002, 0.001) == 'yes' and decide(-0.0021, 0.002, 0.001) == 'no'
    assert decide(0.0019, 0.002, 0.001) == 'undecided'          # within the uncertainty
    assert decide(-0.0009, 0.0, 0.001) == 'undecided'           # within the resolution
    assert decide(0.061 - 0.060, 0.0, 0.001) == 'undecided'     # exactly one test example: inside the closed band
    assert decide(0.0) == 'yes' and decide(0.0, strict=True) == 'no'   # exact numbers: the claim's comparison
    with pytest.raises(LotteryError, match='margin=nan is not allowed'): decide(float('nan'))


def test_matching():
    assert matching([0.050, 0.052, 0.049, 0.051], DENSE, 1000).verdict == 'yes'
    assert matching([0.090, 0.085, 0.095, 0.088], DENSE, 1000).verdict == 'no'
    v = matching([0.05975], [0.05976], 1000)                    # the 5.975% against 5.976%
    assert v.verdict == 'undecided' and v.margin == pytest.approx(1e-5) and v.resolution == 0.001
    at = matching([dense_threshold(DENSE)], DENSE, None, n_boot=1)   # exactly at the threshold, exact numbers: <=
    assert at.margin == 0.0 and at.verdict == 'yes'
    assert matching([dense_threshold(DENSE)], DENSE, 1000).verdict == 'undecided'
    one_over = matching([0.0646], [0.0636], 1000)                # one test example over a one-seed threshold
    assert one_over.verdict == 'undecided'
    assert matching([0.0656], [0.0636], 1000).verdict == 'no'     # two examples over, no spread: a clear no


def test_linearly_connected_at_epsilon_and_from_paths():
    flat = np.tile(np.linspace(0.06, 0.07, 11), (4, 1))
    bump = flat + 0.05 * np.sin(np.pi * BETAS)
    assert np.allclose(path_barriers(flat, BETAS), 0) and np.allclose(path_barriers(bump, BETAS), 0.05)
    assert linearly_connected(path_barriers(flat, BETAS), DENSE, 1000).verdict == 'yes'
    assert linearly_connected(path_barriers(bump, BETAS), DENSE, 1000).verdict == 'no'
    exact = linearly_connected([EPS] * 4, DENSE, None, n_boot=1)
    assert exact.margin == 0.0 and exact.verdict == 'no'        # barrier exactly at ε: not connected (strict <)
    assert linearly_connected([EPS] * 4, DENSE, 1000).verdict == 'undecided'     # ... but within one test example
    assert linearly_connected([EPS - 0.0008] * 4, DENSE, 1000).verdict == 'undecided'


def test_lcs_membership():
    inside = np.tile(np.linspace(0.060, 0.061, 11), (2, 1))
    assert lcs_membership(inside, BETAS, DENSE, 10000).verdict == 'yes'
    barrier = inside + np.r_[0, 0.03 * np.sin(np.pi * BETAS[1:])]
    v = lcs_membership(barrier, BETAS, DENSE, 10000)
    assert v.verdict == 'no' and v.details['barrier_margin'] < 0 < v.details['error_margin']
    worse = np.tile(np.linspace(0.06, 0.08, 11), (2, 1))
    assert lcs_membership(worse, BETAS, DENSE, 10000).verdict == 'no'
    at_eps = np.linspace(0.06, 0.06 + EPS, 11)[None]            # E(w') = E(w) + ε exactly, no barrier
    assert lcs_membership(at_eps, BETAS, DENSE, None, n_boot=1).verdict == 'yes'
    assert lcs_membership(at_eps, BETAS, DENSE, 1000).verdict == 'undecided'


def test_iff_agreement_covers_explicit_segments():
    E = np.array([[0.06, 0.050, 0.051, 0.052, 0.09, 0.12]] * 3)
    B = np.array([[0.01, 0.000, 0.000, 0.020, 0.04]] * 3)
    v = iff_agreement(B, E, DENSE, 1000, iff_segments(5))
    assert (v.verdict, v.agreement, v.n, v.details['segments'], v.resolution) == ('yes', 1.0, 12, [1, 2, 3, 4], 1 / 12)
    assert len(v.details['pairs']) == 12 and v.details['ambiguous'] == 0
    assert iff_agreement(B, E, DENSE, 1000, range(5)).agreement == 0.8
    opposite = np.array([[0.01, 0.02, 0.03, 0.000, 0.00]] * 3)
    assert iff_agreement(opposite, E, DENSE, 1000, iff_segments(5)).verdict == 'no'
    mix = B.copy(); mix[0, 3] = 0.0                              # 11 of 12 agree
    assert iff_agreement(mix, E, DENSE, 1000, iff_segments(5), required=11 / 12).verdict == 'undecided'
    with pytest.raises(LotteryError, match='segments=\\[5\\] is not allowed'): iff_agreement(B, E, DENSE, 1000, [5])
    with pytest.raises(LotteryError, match='levels=1 is not allowed'): iff_segments(1)


def test_adaptive_saving():
    assert adaptive_saving([11, 11, 11, 11], [7, 7, 8, 7]).verdict == 'yes'
    cpu = adaptive_saving([11, 11, 11, 11], [11, 11, 11, 10])   # 10.75 vs 11: less than one retraining
    assert cpu.verdict == 'no' and cpu.margin == -0.75
    assert adaptive_saving([11, 11], [10, 10]).verdict == 'yes'  # exactly one retraining counts (>=)
    assert adaptive_saving([11, 11, 11, 11], [12, 8, 12, 8]).verdict == 'undecided'
    c = adaptive_saving([1.1e6, 1.1e6], [0.7e6, 0.75e6], unit=1e5, what='compute')
    assert c.verdict == 'yes' and c.details['relative'] == pytest.approx(1 - 0.725 / 1.1)


def test_no_worse_than_and_share_at_most():
    assert no_worse_than([0.095, 0.096, 0.094], [0.100, 0.100, 0.101], DENSE, 1000).verdict == 'yes'
    assert no_worse_than([0.130, 0.125, 0.135], [0.100, 0.100, 0.101], DENSE, 1000).verdict == 'no'
    assert no_worse_than([0.1026], [0.100], DENSE, 1000).verdict == 'undecided'
    assert share_at_most([1e4, 1.2e4], [3e5, 3e5], 0.1).verdict == 'yes'
    assert share_at_most([1e5, 1.2e5], [3e5, 3e5], 0.1).verdict == 'no'
    assert share_at_most([3e4], [3e5], 0.1).verdict == 'yes'     # exactly at the limit, exact counts (<=)


def test_rewind_better():
    assert rewind_better([0.10, 0.11, 0.105], [0.20, 0.22, 0.19], 1000).verdict == 'yes'
    assert rewind_better([0.20, 0.22, 0.19], [0.10, 0.11, 0.105], 1000).verdict == 'no'
    assert rewind_better([0.1075, 0.10, 0.11, 0.12], [0.10, 0.10, 0.25, 0.10], 1000).verdict == 'undecided'
    assert rewind_better([0.1000], [0.1005], 1000).verdict == 'undecided'    # half a test example
    assert rewind_better([0.1], [0.1], None).verdict == 'no'


def test_deeper_matching():
    late = np.array([[0.06, 0.05, 0.05, 0.05, 0.05, 0.09]] * 2)
    early = np.array([[0.06, 0.05, 0.05, 0.10, 0.12, 0.15]] * 2)
    assert matching_run(matching_levels(late, DENSE, 1000)) == (4, 4)
    assert deeper_matching(late, early, DENSE, 1000).verdict == 'yes'
    assert deeper_matching(early, late, DENSE, 1000).verdict == 'no'
    assert deeper_matching(late, late, DENSE, 1000).verdict == 'no'
    unsure = late.copy(); unsure[:, 3] = 0.0636
    assert deeper_matching(unsure, early, DENSE, 1000).verdict == 'undecided'
    assert matching_run(matching_levels(unsure, DENSE, 1000)) == (2, 4) and sparsest_matching(matching_levels(unsure, DENSE, 1000)) == 4
    noisy_start = late.copy(); noisy_start[:, 1] = 0.0636                     # level 1 undecided, 2-4 clear yes
    assert sparsest_matching(matching_levels(noisy_start, DENSE, 1000)) == 4
    assert sparsest_matching(matching_levels(early[:, [0, 3, 1]], DENSE, 1000)) == 0   # a clear no first: nothing after counts


def test_combinations_and_table():
    segs = [linearly_connected([b] * 4, DENSE, 1000, claim=f'segment {i}') for i, b in enumerate([0.0, 0.001, 0.0, 0.0025, 0.05])]
    assert [s.verdict for s in segs] == ['yes', 'yes', 'yes', 'undecided', 'no']
    assert all_hold(segs[:3], 'all').verdict == 'yes' and all_hold(segs[:4], 'all').verdict == 'undecided'
    assert all_hold(segs, 'all').verdict == 'no'
    assert negate(segs[4], 'not connected').verdict == 'yes' and negate(segs[4], 'x').margin == -segs[4].margin
    assert share_hold(segs[:3] + [segs[4]] * 4, 'most').verdict == 'no'
    assert share_hold(segs[:3] + [segs[3]] * 2 + [segs[4]] * 3, 'most').verdict == 'undecided'
    t = claims_markdown([segs[0], segs[3], segs[4]])
    lines = t.split('\n')
    assert lines[0] == '| claim | paper says | this run measured | margin | uncertainty | verdict |' and len(lines) == 5
    assert lines[2].endswith('| yes |') and lines[3].endswith('| **undecided** |') and lines[4].endswith('| **no** |')
    with pytest.raises(LotteryError, match="verdict='maybe' is not allowed"): Verdict('x', 'maybe', 0, 0, 0, 1)


def test_bootstrap_is_seeded():
    a = np.array([0.05, 0.06, 0.07, 0.08])
    assert bootstrap_margin(np.mean, a, seed=3) == bootstrap_margin(np.mean, a, seed=3)
    assert bootstrap_margin(np.mean, a, seed=3) != bootstrap_margin(np.mean, a, seed=4)
    v1, v2 = (matching([0.05, 0.055, 0.06, 0.052], DENSE, 1000) for _ in range(2))
    assert (v1.uncertainty, v1.details['interval']) == (v2.uncertainty, v2.details['interval'])


def test_n_test_for_resolution():
    assert n_test_for_resolution(0.008) == 1250          # 1/n <= ε/10 at ε = 0.8 points
    assert 1 / n_test_for_resolution(0.0077) <= 0.0077 / 10
    assert n_test_for_resolution(0.008, ratio=80) == 10000
    assert error_sampling_std(0.06, 1000) == pytest.approx(0.00751, abs=1e-5)
    with pytest.raises(LotteryError, match='eps=8 and ratio=10 are not allowed'): n_test_for_resolution(8)
