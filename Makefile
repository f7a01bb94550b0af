# Two entry points for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := $(CURDIR)/.demo
TODAY := $(shell date -u +%F)

# Embedded defaults: Airflow and provenance on SQLite, artefacts in a local folder, all inside the repo.
DEMO_ENV := AIRFLOW_HOME=$(DEMO)/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False \
	SYNTHCHAIN_HOME=$(DEMO) SYNTHCHAIN_STORAGE=$(DEMO)/storage HF_HUB_OFFLINE=1 GX_ANALYTICS_ENABLED=False \
	SYNTHCHAIN_LINE_ORDER_WAIT_S=0
# (`airflow dags test` runs one run at a time: a run left "running" by an interrupted demo must not hold the next)

# The two demo DAGs: tabular records and labelled text.
DEMO_SPECS := lending_club fine_foods

# The LLM demo: a real model (SmolLM2-135M-Instruct, llama-cpp-python) on 127.0.0.1, stopped afterwards.
LLM_PORT ?= 8765
LLM_SPECS := fine_foods_llm humaneval_code
LLM_ENV := AIRFLOW_CONN_LLM_LOCAL='{"host": "http://127.0.0.1:$(LLM_PORT)/v1", "extra": {"structured_output": "json_object"}}'

.PHONY: install demo demo-llm test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

demo: install
	mkdir -p $(DEMO)
	$(DEMO_ENV) $(BIN)/airflow db migrate > $(DEMO)/airflow-migrate.log 2>&1
	@for spec in $(DEMO_SPECS); do \
		echo "running synthchain__$$spec through Airflow (log: $(DEMO)/dag-test-$$spec.log)"; \
		$(DEMO_ENV) $(BIN)/airflow dags test synthchain__$$spec $(TODAY) > $(DEMO)/dag-test-$$spec.log 2>&1 \
			|| { tail -50 $(DEMO)/dag-test-$$spec.log; exit 1; }; \
	done
	@for spec in $(DEMO_SPECS); do $(DEMO_ENV) $(BIN)/synthchain summary --spec $$spec || exit 1; done

demo-llm: install
	mkdir -p $(DEMO)
	$(DEMO_ENV) $(BIN)/airflow db migrate > $(DEMO)/airflow-migrate.log 2>&1
	@$(BIN)/python -m synthchain.llm.local_server --port $(LLM_PORT) > $(DEMO)/llm-server.log 2>&1 & server=$$!; \
	trap "kill $$server" EXIT; \
	for i in $$(seq 120); do curl -sf http://127.0.0.1:$(LLM_PORT)/v1/models > /dev/null && break; sleep 1; done; \
	echo "SmolLM2-135M-Instruct serving on 127.0.0.1:$(LLM_PORT) (log: $(DEMO)/llm-server.log)"; \
	for spec in $(LLM_SPECS); do \
		echo "running synthchain__$$spec through Airflow (log: $(DEMO)/dag-test-$$spec.log)"; \
		$(DEMO_ENV) $(LLM_ENV) $(BIN)/airflow dags test synthchain__$$spec $(TODAY) > $(DEMO)/dag-test-$$spec.log 2>&1 \
			|| { tail -50 $(DEMO)/dag-test-$$spec.log; exit 1; }; \
	done; \
	for spec in $(LLM_SPECS); do $(DEMO_ENV) $(BIN)/synthchain summary --spec $$spec || exit 1; done

# Two xdist workers, a file at a time each: the live-Airflow files spend much of their time waiting on the
# scheduler, and the other worker's pipelines use that CPU (each worker has its own databases, see conftest).
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Peers (SDV) need pandas < 3: they get their own venv; synthchain is installed into it too.
bench: install
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -r requirements-bench.txt
	.venv-bench/bin/pip install -q --no-deps -e .
	.venv-bench/bin/python bench/copula_vs_sdv.py
	$(DEMO_ENV) $(BIN)/python bench/scale_tabular.py
	.venv-bench/bin/python bench/metrics_vs_sdmetrics.py
	$(BIN)/python bench/provenance_write.py
	$(BIN)/python bench/neardup_vs_datasketch.py
	$(BIN)/python bench/ngram_vs_nltk.py
	$(DEMO_ENV) $(BIN)/python bench/text_pipeline.py
	$(BIN)/python bench/llm_client.py

clean:
	rm -rf $(DEMO) .airflow
