"""Hidden reference solutions of notebooks/negatives.py, run by tests/test_notebooks.py in the notebook's own kernel
after it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "K_ZIPF = next(K for K in range(1, 10_000) if th.coverage(zipf, K + 1) >= 0.95)\n",
    2: "log_C = np.log(10)\n",
}
WRONG = {
    1: "K_ZIPF = next(K for K in range(1, 10_000) if th.coverage(rho, K + 1) >= 0.95)\n",   # the uniform law's K
    2: "log_C = np.log2(10)\n",   # bits, not nats
}
CONTRADICTING = "check.contradicting_answer_2(rows, t2)"
