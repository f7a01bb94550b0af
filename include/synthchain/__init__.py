"""synthchain: a synthetic-data supply chain (profiling → generation → verification → filtering & dedup →
blending → evaluation → publish), plain Python, no Airflow imports.

The top level is the core every modality shares: the hops' orchestration (pipeline), the contracts a
modality fills (modality, generators, filters), seeds, holdout, lineage, utility intervals, gates, the
report page, storage, provenance, specs and run parameters. Core modules never import a modality package
(`tabular`, `text`, `code`) or `ops`; the one place that names modalities is the registry, `modalities.py`,
and it names them as strings loaded on first use.

Subpackages: `tabular`, `text`, `code` (one per modality), `collapse` (monitor contract and the collapse
experiment), `llm` (the OpenAI-compatible client, cache, judge and local servers), `provenance` (the store
and its migrations), `ops` (what operators run: CLI, dashboard, comparisons, DAG-file sync, gc).
"""
