"""``tollgate bench``: Tollgate measured against baselines, in one run, by one load generator."""
