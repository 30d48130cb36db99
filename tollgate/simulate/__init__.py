"""``tollgate simulate``: run timeline scenarios against the real stack on the test clock."""
