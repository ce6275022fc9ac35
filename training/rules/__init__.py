"""Product rules: frequent itemsets, ranking against confounders, the rule base."""
