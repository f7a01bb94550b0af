"""The tabular modality: records with typed columns and a target.

- `modality`: `TabularModality`, the plug-in the hops call (registered in synthchain/modalities.py).
- `profile` (loading real rows, column kinds, the profile), `columns` (per-column rules and plans),
  `dtypes` (values as floats and back).
- `generators` (the built-ins by name): `copula` (Gaussian copula), `cart` (sequential CART).
- `verification/` (constraints, fidelity, privacy: DCR/NNDR, neighbours, copies), `filters`,
  `expectations` (GX checks from the profile), `evaluation` (TRTR / TSTR / blend with intervals), `baselines` (per class and slice against class
  weights and SMOTE-NC), `error_slices` (where the real-only model errs, for `targets.from_errors`),
  `associations`, `monitors` (collapse), `report` (report sections).

May import the core (synthchain's top-level modules, `collapse`, `llm`, `provenance`) and its own modules;
never another modality or `ops`.
"""
