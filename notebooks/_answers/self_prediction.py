"""Hidden reference solutions of notebooks/self_prediction.py, run by tests/test_notebooks.py in the notebook's own
kernel after it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "def chernoff_bound(n, p, sigma2_eff):\n    return 4 * (p + 1) * sigma2_eff / n\n",
    2: "prediction = 'vacuous'\n",
}
WRONG = {
    1: "def chernoff_bound(n, p, sigma2_eff):\n    return 4 * (p + 1) * sigma2_eff / n ** 0.5\n",   # a 1/sqrt(n) rate
    2: "prediction = 'assumption not met'\n",   # what the notebook's answer said before; not what the run shows
}
# the old answer to exercise 1: "the measured excess risk falls at least as fast as the bound"
CONTRADICTING = "check.contradicting_answer_1(r1)"
