# Airflow 3 image with synthchain and its pinned stack installed.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt /opt/synthchain/requirements.txt
RUN pip install --no-cache-dir -r /opt/synthchain/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/synthchain/pyproject.toml
COPY --chown=airflow:root include /opt/synthchain/include
RUN pip install --no-cache-dir --no-deps -e /opt/synthchain
