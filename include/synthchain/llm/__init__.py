"""Language models behind any OpenAI-compatible endpoint: the services every LLM use shares.

- `endpoint`: base URL and key from an Airflow connection or `AIRFLOW_CONN_*` (never the spec).
- `client`: chat completions with an adaptive concurrency limit, retries, a circuit breaker and a deadline.
- `cache`: content-addressed responses on the run's storage (a re-run pays nothing twice).
- `replies`: a JSON reply parsed and validated against its schema; `judge`: the rubric judge verifier.
- `faults` / `local_server`: a fault-injecting chat server and the real llama.cpp server (tests, demo, benches).

The text generator and its prompt strategies live in the text modality (text/llm_generator.py,
text/strategies.py). Core: imports no modality package.
"""
