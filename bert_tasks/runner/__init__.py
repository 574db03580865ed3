"""The run floor: what every training and evaluation command does, written once.

=========== ========================================================================
template    one run (``train_one``) and scoring a trained folder (``evaluate_folder``)
sweeps      ``train``: a plain recipe, ``task: all``, seeds, grids
statistics  medians and spreads over seeds, the seed and grid tables
outputs     the output folders a command claimed, removed again if it stops before results
=========== ========================================================================
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "train": "sweeps", "SEEDS_SUMMARY": "sweeps", "GRID_SUMMARY": "sweeps", "grid_points": "sweeps",
    "train_one": "template", "evaluate_folder": "template", "build_model": "template", "start_run": "template",
    "print_summary": "template",
    "seed_summary": "statistics", "print_table": "statistics", "flat_metrics": "statistics",
    "track_output_dir": "outputs", "claim_output_dir": "outputs", "open_ledger": "outputs", "current": "outputs",
    "has_results": "outputs",
})
