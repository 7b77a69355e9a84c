"""Coefficients of the learned pair judge (storytransformer/similarity/pair_judge.py).

Written by `python benchmarks/similarity_judge.py --write` from the tune pairs of
benchmarks/labels/pairs/pairs.csv; tests/similarity/test_pair_judge.py refits them and checks they
are reproduced. Do not edit by hand.
"""

FEATURES = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage')
INTERCEPT_DUPLICATE = -7.938074202
COEF_DUPLICATE = (4.095191924, 1.446166253, 0, 3.253713116, 6.344964624, 0.07608193074, -0.4359499687, 12.74980362, 1.409312235, -1.899767121, 0, 0.6865089562, 0,)
INTERCEPT_MERGE = -5.486243852
COEF_MERGE = (2.879187675, 0.9173370714, 0, 2.209492985, 6.051955422, 0, -0.4652289345, 10.52249914, 1.55336423, -1.64141061, 0, 0.6609359253, 0,)
DUPLICATE_CUT = 0.35
MERGE_CUT = 0.4

# With similarity.second_model (`--second-judge DIR --write`): the second model's two cosines as two more features.
FEATURES_SECOND = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage', 'second_whole', 'second_means')
INTERCEPT_DUPLICATE_SECOND = -13.97889149
COEF_DUPLICATE_SECOND = (0, 0, 0, 2.710863642, 5.541647372, 0.09136293024, -0.441670135, 6.941174992, 0.8398618403, -2.224299176, 0, 0.2538218287, 0, 14.1326127, 0,)
INTERCEPT_MERGE_SECOND = -10.85669701
COEF_MERGE_SECOND = (0, 0, 0, 1.670135722, 5.417506924, 0, -0.5080164637, 4.869097046, 0.9809437557, -1.928956999, 0, 0.1264884347, 0, 11.75403956, 0,)
DUPLICATE_CUT_SECOND = 0.4
MERGE_CUT_SECOND = 0.45
