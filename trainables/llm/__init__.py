"""Prompted instruction-tuned LLMs as baselines (paper section 4.2, 4.4 and appendix A.5).

No training: a prompt per test text (zero-shot, or few-shot with 2 examples per class from
the training split), greedy generation, the JSON answer parsed into a label and a top-1
confidence, scored with the same F1 and ECE as every other row. Plain Python: no Ray, no
MLflow (orchestrator/trial.py runs a stage as a Ray task).
"""
