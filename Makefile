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

# The local model server: llama-cpp-python ships only an sdist, so it is built here, portably. GGML_NATIVE
# would compile for this host's CPU (-march=native) and ggml's AMX path crashes on AMX hosts (a general
# protection fault in libggml-cpu on the first completion), so the x86-64 instruction sets are named one by
# one: SSE4.2, AVX, AVX2, FMA, F16C (any x86-64 host since 2013), and AVX-512, AVX-VNNI and AMX stay off.
# pip's wheel cache keys a built sdist by its URL and hash, not by CMAKE_ARGS, so the wheel is built with
# --no-cache-dir into a project-local wheelhouse named by a hash of the version and flags, and installed
# from there only (--only-binary): a wheel built with other flags cannot come back from any cache.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
	-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=OFF \
	-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_KEY := $(shell printf '%s %s' '$(LLAMA_VERSION)' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
WHEELHOUSE := $(CURDIR)/.wheelhouse/llama-$(LLAMA_KEY)

.PHONY: install demo demo-llm test bench clean llama-wheel airflow

install: $(VENV)/.installed

llama-wheel: $(WHEELHOUSE)/cmake-args.txt

$(WHEELHOUSE)/cmake-args.txt:
	rm -rf $(WHEELHOUSE).partial && mkdir -p $(WHEELHOUSE).partial
	@echo "building llama-cpp-python $(LLAMA_VERSION) portably (about 8 minutes on 2 cores): $(WHEELHOUSE)"
	env -u CFLAGS -u CXXFLAGS CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 \
		$(PYTHON) -m pip wheel -q --no-cache-dir --no-deps --no-binary llama_cpp_python \
		-w $(WHEELHOUSE).partial llama_cpp_python==$(LLAMA_VERSION)
	echo '$(LLAMA_CMAKE_ARGS)' > $(WHEELHOUSE).partial/cmake-args.txt
	rm -rf $(WHEELHOUSE) && mv $(WHEELHOUSE).partial $(WHEELHOUSE)

# The stamp names the wheel's key: a venv that holds a llama.cpp built otherwise (an older native build)
# gets the portable wheel force-installed over it.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml $(WHEELHOUSE)/cmake-args.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --only-binary llama_cpp_python --find-links $(WHEELHOUSE) -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps --force-reinstall --no-index --find-links $(WHEELHOUSE) llama_cpp_python==$(LLAMA_VERSION)
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
	@rm -f $(DEMO)/llm-server.log $(DEMO)/llm-ready.log; \
	$(BIN)/python -m synthchain.llm.local_server --port $(LLM_PORT) --log $(DEMO)/llm-server.log \
		> $(DEMO)/llm-ready.log 2>&1 & server=$$!; \
	trap "kill $$server 2> /dev/null; wait $$server" EXIT; \
	until grep -q 'local model ready' $(DEMO)/llm-ready.log; do \
		kill -0 $$server 2> /dev/null || { cat $(DEMO)/llm-ready.log; exit 1; }; sleep 1; done; \
	echo "SmolLM2-135M-Instruct answered a first completion on 127.0.0.1:$(LLM_PORT) (log: $(DEMO)/llm-server.log)"; \
	for spec in $(LLM_SPECS); do \
		echo "running synthchain__$$spec through Airflow (log: $(DEMO)/dag-test-$$spec.log)"; \
		$(DEMO_ENV) $(LLM_ENV) $(BIN)/airflow dags test synthchain__$$spec $(TODAY) > $(DEMO)/dag-test-$$spec.log 2>&1 \
			|| { tail -50 $(DEMO)/dag-test-$$spec.log; exit 1; }; \
	done; \
	for spec in $(LLM_SPECS); do $(DEMO_ENV) $(BIN)/synthchain summary --spec $$spec || exit 1; done

# The Airflow UI on the demo's embedded defaults: `airflow standalone` starts its components as `airflow ...`
# from PATH, so the venv's bin goes first on it. The DAG files are synced from the specs first; once the api-server
# answers, the login is printed (standalone echoes a generated password only the first time). Ctrl-C stops it.
AIRFLOW_PORT ?= 8080
airflow: install
	mkdir -p $(DEMO)
	$(DEMO_ENV) $(BIN)/synthchain dags sync
	@echo "starting Airflow (api-server, scheduler, dag-processor, triggerer) on http://localhost:$(AIRFLOW_PORT); Ctrl-C stops it"
	@( for i in $$(seq 600); do \
		kill -0 $$$$ 2> /dev/null || exit 0; \
		if curl -sf http://127.0.0.1:$(AIRFLOW_PORT)/api/v2/monitor/health > /dev/null \
			&& [ -s $(DEMO)/airflow/simple_auth_manager_passwords.json.generated ]; then \
			echo "synthchain: Airflow UI ready on http://localhost:$(AIRFLOW_PORT) (synthchain page: /synthchain/); log in as" \
				"admin with password $$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' \
				$(DEMO)/airflow/simple_auth_manager_passwords.json.generated)"; exit 0; fi; \
		sleep 1; done ) & \
	exec env $(DEMO_ENV) PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
		AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$(AIRFLOW_PORT)/execution/ $(BIN)/airflow standalone

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
	$(DEMO_ENV) $(BIN)/python bench/targeted_vs_baselines.py
	.venv-bench/bin/python bench/metrics_vs_sdmetrics.py
	$(BIN)/python bench/provenance_write.py
	$(BIN)/python bench/neardup_vs_datasketch.py
	$(BIN)/python bench/ngram_vs_nltk.py
	$(BIN)/python bench/embeddings.py
	$(DEMO_ENV) $(BIN)/python bench/text_pipeline.py
	$(DEMO_ENV) $(BIN)/python bench/text_scale.py
	$(BIN)/python bench/llm_client.py

clean:
	rm -rf $(DEMO) .airflow
