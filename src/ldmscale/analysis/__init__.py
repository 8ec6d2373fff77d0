"""Analysis: metrics table, best model per sampling budget, the HTML report."""
