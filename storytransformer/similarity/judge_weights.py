"""Coefficients of the learned pair judge (storytransformer/similarity/pair_judge.py).

Written by `python benchmarks/similarity_judge.py --write` from the tune pairs of
benchmarks/labels/pairs/pairs.csv; tests/similarity/test_pair_judge.py refits them and checks they
are reproduced. Do not edit by hand.
"""

FEATURES = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage')
INTERCEPT_DUPLICATE = -8.251354198
COEF_DUPLICATE = (4.699747912, 1.132373972, 0, 3.134025424, 5.717910133, 0, -0.3891760591, 12.1556111, 1.438936814, -1.86015855, 0, 0.8086084316, 0,)
INTERCEPT_MERGE = -5.732979583
COEF_MERGE = (3.292010259, 0.6715991414, 0, 2.111702551, 5.576618744, 0, -0.3855584087, 10.04277718, 1.58294913, -1.607697353, 0, 0.7633825967, 0,)
DUPLICATE_CUT = 0.35
MERGE_CUT = 0.4

# With similarity.second_model (`--second-judge DIR --write`): the second model's two cosines as two more features.
FEATURES_SECOND = ('whole', 'means', 'means_lexical', 'role', 'no_role', 'ends', 'no_ends', 'gap', 'contained', 'same_verb', 'object_overlap', 'length_ratio', 'coverage', 'second_whole', 'second_means')
INTERCEPT_DUPLICATE_SECOND = -14.17609769
COEF_DUPLICATE_SECOND = (0, 0, 0, 2.509298485, 5.510415295, 0, -0.3757223924, 6.281628919, 0.824868441, -2.170157344, 0, 0.3266329011, 0, 14.41037439, 0,)
INTERCEPT_MERGE_SECOND = -11.03833746
COEF_MERGE_SECOND = (0, 0, 0, 1.538220894, 5.42112408, 0, -0.4099684235, 4.371826132, 0.9795206677, -1.8819826, 0, 0.1944359111, 0, 11.89798846, 0,)
DUPLICATE_CUT_SECOND = 0.4
MERGE_CUT_SECOND = 0.45
