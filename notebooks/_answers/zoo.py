"""Hidden reference solutions of notebooks/zoo.py, run by tests/test_notebooks.py in the notebook's own kernel after
it has executed: SOLUTIONS must pass the checkers, WRONG must fail them, CONTRADICTING must fail."""
SOLUTIONS = {
    1: "def lemma_bound(L_un, collision_floor, p_distinct):\n    return (L_un - collision_floor) / p_distinct\n",
    2: "hardest = rows.groupby('objective')['measured'].median().idxmax()\n",
}
WRONG = {
    1: "def lemma_bound(L_un, collision_floor, p_distinct):\n    return L_un / p_distinct\n",
    2: "hardest = rows.groupby('objective')['measured'].median().idxmin()\n",
}
CONTRADICTING = "check.contradicting_answer_1(rows, r1)"
