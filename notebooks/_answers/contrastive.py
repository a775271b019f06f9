"""Hidden reference solutions of notebooks/contrastive.py, run by tests/test_notebooks.py in the notebook's own
kernel after it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "def lemma_bound(L_un, tau):\n    return (L_un - tau) / (1 - tau)\n",
    2: "tau_20 = 20 * (1 / 20) ** 2\n",
    3: "fig, ax = plt.subplots()\ntrivial_line = ax.axhline(r3['trivial'].median(), color='0.5', ls='--')\n"
       "plt.close(fig)\n",
}
WRONG = {
    1: "def lemma_bound(L_un, tau):\n    return L_un - tau\n",   # forgets to divide by 1 - tau
    2: "tau_20 = 1 / 2\n",                                         # two classes' tau
    3: "fig, ax = plt.subplots()\ntrivial_line = ax.axhline(0.5)\nplt.close(fig)\n",
}
# the old answer to exercise 2: "smaller slack at C = 20 because of tau", on an encoder that is barely trained
CONTRADICTING = "check.contradicting_answer_2(rows, r2)"
