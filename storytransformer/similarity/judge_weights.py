"""Coefficients of the learned pair judge (storytransformer/similarity/pair_judge.py).

Written by `python benchmarks/similarity_judge.py --write` from the tune pairs of
benchmarks/labels/pairs/pairs.csv; tests/similarity/test_pair_judge.py refits them and checks they
are reproduced. Do not edit by hand.
"""

FEATURES = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage')
INTERCEPT_DUPLICATE = -9.261739252
COEF_DUPLICATE = (4.892079294, 2.330603543, -1.980094825, 3.07036924, 6.078597862, -0.1271431114, -0.560102627, 11.95067182, 1.937716515, -1.772205623, -0.2035086806, 1.637816449, 0.4123547518,)
INTERCEPT_MERGE = -6.314806751
COEF_MERGE = (3.633592188, 1.41930322, -1.069092942, 2.074304997, 5.75328946, -0.3291494435, -0.6464388793, 9.842319134, 1.918761273, -1.549904921, -0.2282798673, 1.279074289, 0.08979425949,)
DUPLICATE_CUT = 0.35
MERGE_CUT = 0.4
