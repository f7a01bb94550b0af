# Airflow 3 image with synthchain and its pinned stack installed.
FROM apache/airflow:3.3.2-python3.11
# llama-cpp-python (the local model server) builds from its sdist: it needs a C++ toolchain.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.txt requirements-nodeps.txt /opt/synthchain/
RUN pip install --no-cache-dir -r /opt/synthchain/requirements.txt \
    && pip install --no-cache-dir --no-deps -r /opt/synthchain/requirements-nodeps.txt
COPY --chown=airflow:root pyproject.toml /opt/synthchain/pyproject.toml
COPY --chown=airflow:root include /opt/synthchain/include
RUN pip install --no-cache-dir --no-deps -e /opt/synthchain
