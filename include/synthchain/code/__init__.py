"""The code modality: problems with tests; candidate solutions from a model, kept only when they pass in
the sandbox (`execution`, over synthchain/sandbox.py); pass@k (`passk`), the downstream evaluation
(`evaluation`), HumanEval as a source (`humaneval`, the `humaneval://` scheme registered in
synthchain/modalities.py), `modality` (`CodeModality`) and `report`.

Code records are texts: this package may import `text` (checks, filters, diversity, monitors, the prompt
strategies) besides the core; never `tabular` or `ops`.
"""
