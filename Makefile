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
	SYNTHCHAIN_HOME=$(DEMO) SYNTHCHAIN_STORAGE=$(DEMO)/storage HF_HUB_OFFLINE=1 GX_ANALYTICS_ENABLED=False

# The two demo DAGs: tabular records and labelled text.
DEMO_SPECS := lending_club fine_foods

.PHONY: install demo test bench clean

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

test: install
	$(BIN)/python -m pytest -q

# Peers (SDV) need pandas < 3: they get their own venv; synthchain is installed into it too.
bench: install
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -r requirements-bench.txt
	.venv-bench/bin/pip install -q --no-deps -e .
	.venv-bench/bin/python bench/copula_vs_sdv.py
	$(BIN)/python bench/provenance_write.py
	$(BIN)/python bench/neardup_vs_datasketch.py
	$(BIN)/python bench/ngram_vs_nltk.py
	$(DEMO_ENV) $(BIN)/python bench/text_pipeline.py

clean:
	rm -rf $(DEMO) .airflow
