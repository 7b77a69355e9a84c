"""Coefficients of the learned pair judge (storytransformer/similarity/pair_judge.py).

Written by `python benchmarks/similarity_judge.py --write` from the tune pairs of
benchmarks/labels/pairs/pairs.csv; tests/similarity/test_pair_judge.py refits them and checks they
are reproduced. Do not edit by hand.
"""

FEATURES = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage')
INTERCEPT_DUPLICATE = -8.19075025
COEF_DUPLICATE = (4.749712303, 1.121871857, 0, 3.03587765, 5.719814436, 0, -0.3841517762, 12.09734224, 1.417953859, -1.855697919, 0, 0.8018400445, 0,)
INTERCEPT_MERGE = -5.707408141
COEF_MERGE = (3.332008308, 0.6649915381, 0, 2.054184838, 5.578817563, 0, -0.3816067402, 10.00377341, 1.568134295, -1.60516203, 0, 0.7591788659, 0,)
DUPLICATE_CUT = 0.35
MERGE_CUT = 0.4
