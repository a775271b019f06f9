import numpy as np

from theory.verdict import HOLDS, VACUOUS, VIOLATED, slack, verdicts


def test_verdicts_cover_each_case():
    measured = np.array([0.5, 0.9, 0.9, 0.5, 2.0])
    bound = np.array([0.6, 0.6, 0.6, 1.5, 1.5])
    se = np.array([0.0, 0.0, 0.2, 0.0, 0.0])
    got = verdicts(measured, bound, trivial=1.0, measured_se=se)
    # within bound; beyond by 0.3 with no noise; beyond by 0.3 but within 3 SE; above trivial; violated and vacuous
    assert list(got) == [HOLDS, VIOLATED, HOLDS, VACUOUS, VIOLATED]


def test_violation_needs_more_than_three_combined_standard_errors():
    # excess 0.5, combined SE = hypot(0.1, 0.1) = 0.1414: 3 SE = 0.424 < 0.5 -> violated; 4 SE would not be
    assert verdicts(1.5, 1.0, 10.0, 0.1, 0.1)[()] == VIOLATED
    assert verdicts(1.5, 1.0, 10.0, 0.1, 0.1, n_se=4.0)[()] == HOLDS


def test_slack_is_bound_over_measured():
    assert np.allclose(slack([0.5, 2.0], [1.0, 1.0]), [2.0, 0.5])
    assert np.isinf(slack(0.0, 1.0))


def test_bound_from_terms_is_the_tested_mean_classifier_bound():
    """The pipeline recomputes bounds from stored terms; it must agree with the scalar API the proofs test."""
    from theory import contrastive as th
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(1, 4))
        C = int(rng.integers(k + 1, 12))  # at least k + 1 classes, so a (k+1)-way task exists
        rho = rng.dirichlet(np.ones(C))
        loss = ["logistic", "hinge"][int(rng.integers(2))]
        terms = th.collision_terms(rho, k, loss)
        L_un = float(rng.uniform(0.5, 3.0))
        expect = th.mean_classifier_bound(L_un, terms["tau"], loss, k, rho)
        got = th.bound_from_terms(L_un, terms["collision_floor"], terms["p_distinct"])
        assert np.isclose(got, expect, rtol=1e-12)


def test_a_point_outside_its_assumption_is_never_called_violated():
    from theory.verdict import NOT_MET
    got = verdicts([2.0, 2.0, 0.5], [1.0, 1.0, 1.0], trivial=5.0, assumption_met=[False, True, False])
    assert list(got) == [NOT_MET, VIOLATED, NOT_MET]


def test_non_finite_inputs_are_undetermined_with_a_reason():
    from theory.verdict import UNDETERMINED
    got, why = verdicts([np.nan, 0.5, 2.0, 0.5], [1, np.nan, 1.0, np.inf], [2, 2, 3, 3],
                        measured_se=[0, 0, np.nan, 0], return_reasons=True)
    assert list(got) == [UNDETERMINED] * 4
    assert why[0] == "measured is NaN" and why[1] == "bound is NaN" and "one seed" in why[2]
    assert why[3] == "bound is infinite"


def test_a_probe_that_did_not_converge_is_undetermined():
    from theory.verdict import UNDETERMINED
    got, why = verdicts([0.5, 0.5], [1.0, 1.0], 2.0, converged=[True, False], return_reasons=True)
    assert list(got) == [HOLDS, UNDETERMINED] and why[1] == "probe did not converge"


def test_a_reference_is_read_above_or_below_never_judged():
    from theory.verdict import ABOVE, BELOW, UNDETERMINED
    got = verdicts([2.0, 0.5, 0.5, np.nan], [1.0, 1.0, 0.1, 1.0], [0.3, 0.3, 0.3, 0.3], kind="reference")
    # the third is above a reference that is also above "trivial": a reference is never vacuous either
    assert list(got) == [ABOVE, BELOW, ABOVE, UNDETERMINED]
    mixed = verdicts([2.0, 2.0], [1.0, 1.0], 5.0, kind=np.array(["bound", "reference"], dtype=object))
    assert list(mixed) == [VIOLATED, ABOVE]


def test_an_unknown_kind_is_refused():
    import pytest
    with pytest.raises(ValueError, match="kind"):
        verdicts(1.0, 1.0, 1.0, kind="lemma")


def test_identity_is_exact_to_rounding_scaled_to_magnitude_else_broken():
    from theory.verdict import BROKEN, EXACT, IDENTITY_RTOL, NOT_MET, UNDETERMINED
    big = 1e6
    measured = np.array([1.0, 1.0 + 0.5e-9, 1.0 + 2e-9, big * (1 + 0.5e-9), big * (1 + 2e-9), 0.0, np.nan, 5.0])
    bound = np.array([1.0, 1.0, 1.0, big, big, 1.0, 1.0, 1.0])
    met = np.array([True] * 7 + [False])
    got = verdicts(measured, bound, trivial=np.inf, kind="identity", assumption_met=met)
    assert IDENTITY_RTOL == 1e-9
    assert list(got) == [EXACT, EXACT, BROKEN, EXACT, BROKEN, EXACT, UNDETERMINED, NOT_MET]
    # an SE does not excuse an identity: it is exact algebra, no Monte-Carlo allowance
    assert verdicts(1.1, 1.0, np.inf, 0.5, 0.5, kind="identity")[()] == BROKEN
    assert verdicts(1.1, 1.0, np.inf, 0.5, 0.5, kind="bound")[()] == HOLDS   # a bound with that SE holds


def test_unknown_kind_is_refused():
    import pytest
    with pytest.raises(ValueError, match="kind: must be one of bound, reference, identity"):
        verdicts(1.0, 1.0, 2.0, kind="lemma")
