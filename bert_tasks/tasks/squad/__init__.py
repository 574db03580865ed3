"""SQuAD v1.1 / v2.0 extractive question answering: data loading, windowing, postprocessing, scoring.

Submodules are imported on use (``bert_tasks.tasks.squad.task`` holds the adapter) so
that importing the package stays cheap.
"""
