"""Pictures for people, used by ``bert-tasks attention`` and ``bert-tasks plot`` only.

========== =========================================================================
attention  attention maps per layer and head, the QA view, an attention pooling's weights
plots      a run folder's training curves, evaluations and confusion matrices
========== =========================================================================
"""
