"""Language models behind any OpenAI-compatible endpoint: client, cache, prompt strategies, judge.

- `endpoint`: base URL and key from an Airflow connection or `AIRFLOW_CONN_*` (never the spec).
- `client`: chat completions with an adaptive concurrency limit, retries and a deadline.
- `cache`: content-addressed responses on the run's storage (a re-run pays nothing twice).
- `strategies`: versioned prompt strategies, each with its JSON schema and parser.
- `generator`: the `openai_compatible` text generator; `judge`: the rubric judge verifier.
- `faults` / `local_server`: a fault-injecting chat server and the real llama.cpp server (tests, demo, benches).
"""
