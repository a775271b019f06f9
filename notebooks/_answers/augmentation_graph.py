"""Hidden reference solutions of notebooks/augmentation_graph.py, run by tests/test_notebooks.py in the notebook's
own kernel after it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "def eigen_bound(alpha, lambda_next):\n    return np.minimum(1.0, alpha + 4 * alpha / lambda_next)\n",
    2: "prediction = 'vacuous'\n",
}
WRONG = {
    1: "def eigen_bound(alpha, lambda_next):\n    return alpha + 4 * alpha / lambda_next\n",   # forgets the cap at 1
    2: "prediction = 'holds'\n",
}
CONTRADICTING = "check.contradicting_answer_2(t2)"
