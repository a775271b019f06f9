"""Hidden reference solutions of notebooks/language.py, run by tests/test_notebooks.py in the notebook's own kernel
after it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "def theorem_bound(tau, B, epsilon, gamma):\n    return tau + np.sqrt(2 * B ** 2 * epsilon / gamma)\n",
    2: "def natural(natural_gap, gap_max):\n    return natural_gap <= gap_max\n",
}
WRONG = {
    1: "def theorem_bound(tau, B, epsilon, gamma):\n    return tau + np.sqrt(2 * B ** 2 * epsilon * gamma)\n",
    2: "def natural(natural_gap, gap_max):\n    return natural_gap >= gap_max\n",
}
# the old answer to exercise 2 implied that more points are "assumption not met" in a less predictable language
CONTRADICTING = "check.contradicting_answer_2(rows, r2)"
