"""Where numbers are measured: the paper's Recall@K protocol (:mod:`.protocol`), the metrics
(:mod:`.metrics`), and the evaluation of intent reading (:mod:`.intent`)."""
