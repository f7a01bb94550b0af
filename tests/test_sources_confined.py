"""What a spec may read: files inside the data roots, databases only through an Airflow connection id or an
operator's allow-list ($SYNTHCHAIN_ALLOWED_SQL), never a raw database URL of the spec author's choosing.

Real files, a real SQLite file and a real PostgreSQL database on 127.0.0.1 (a scratch database of its own).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import yaml
from conftest import PROVENANCE_DB, ensure_database, environment
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from synthchain import connections
from synthchain.sources import SourceError, read_source
from synthchain.specs import SourceSpec, SpecError, load_spec, sql_url_allowed
from synthchain.tabular.profile import load_real_data

FRAME = pd.DataFrame({"amount": [100.0, 250.5, 80.0, 410.0], "grade": ["a", "b", "a", "c"],
                      "Class": ["good", "bad", "good", "good"]})


def write_spec(folder: Path, source, name: str = "spec.yaml", **more) -> Path:
    spec = {"name": "confined", "source": source, "target": "Class", "task": "classification", **more}
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message and len(message) < 1000
    return message


def distill(inputs: dict) -> dict:
    return {"name": "teacher", "type": "openai_compatible", "version": "1.0",
            "params": {"connection": "llm", "model": "m", "strategy": "distill", "inputs": inputs}}


@pytest.fixture
def no_lookup():
    """Connections from the environment only (as outside Airflow), whatever another test registered."""
    connections.set_connection_lookup(None)
    yield
    connections.set_connection_lookup(None)


@pytest.fixture(scope="module")
def warehouse_url() -> str:
    """A scratch PostgreSQL database holding table `loans` (and `risk.loans` in another schema)."""
    url = ensure_database(f"{PROVENANCE_DB}_sources")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS risk")
    FRAME.to_sql("loans", engine, if_exists="replace", index=False)
    FRAME.head(2).to_sql("loans", engine, schema="risk", if_exists="replace", index=False)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_file(tmp_path) -> Path:
    path = tmp_path / "data" / "warehouse.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        FRAME.to_sql("loans", conn, index=False)
    return path


# --- raw database URLs are refused when the spec is loaded --------------------------------------------------------

def test_airflow_metadata_database_url_is_refused_naming_the_field(tmp_path):
    airflow_db = tmp_path / "airflow-home" / "airflow.db"
    airflow_db.parent.mkdir()
    with sqlite3.connect(airflow_db) as conn:  # a real, readable SQLite file: only the spec check stops it
        conn.execute("CREATE TABLE variable (key TEXT, val TEXT)")
        conn.execute("INSERT INTO variable VALUES ('secret', 's3cr3t')")
    path = write_spec(tmp_path, {"uri": f"sqlite:///{airflow_db}", "table": "variable"})
    message = refusal(path)
    assert "field 'source.uri'" in message
    assert "a database URL in a spec is refused" in message
    assert "{connection: <connection id>, table: variable}" in message and "SYNTHCHAIN_ALLOWED_SQL" in message


@pytest.mark.parametrize("where, spec_part", [
    ("holdout.source.uri", {"holdout": {"source": {"uri": "postgresql://postgres@127.0.0.1/synthchain", "table": "t"}}}),
    ("generators.0.params.inputs.uri", {"generators": [distill({"uri": "sqlite:////tmp/provenance.db",
                                                                "table": "dataset_versions"})]}),
])
def test_raw_database_urls_are_refused_wherever_they_appear(tmp_path, where, spec_part):
    (tmp_path / "real.csv").write_text("amount,Class\n1,good\n")
    message = refusal(write_spec(tmp_path, "real.csv", **spec_part))
    assert f"field '{where}'" in message and "name an Airflow connection instead" in message


def test_a_password_in_a_refused_url_is_not_repeated(tmp_path):
    message = refusal(write_spec(tmp_path, {"uri": "postgresql://admin:hunter2@db.internal/prod", "table": "t"}))
    assert "hunter2" not in message and "admin:***@db.internal" in message


def test_unknown_schemes_are_refused(tmp_path):
    message = refusal(write_spec(tmp_path, "ftp://files.example.com/loans.csv"))
    assert "field 'source.uri': unknown scheme 'ftp://'" in message


# --- the operator's allow-list -------------------------------------------------------------------------------------

def test_the_allow_list_permits_exactly_what_it_lists(tmp_path, sqlite_file, warehouse_url):
    listed = f"sqlite:///{sqlite_file}"
    other = tmp_path / "data" / "other.db"
    with sqlite3.connect(other) as conn:
        FRAME.to_sql("loans", conn, index=False)
    with environment(SYNTHCHAIN_ALLOWED_SQL=f"{listed}, {warehouse_url}"):
        spec = load_spec(write_spec(tmp_path, {"uri": listed, "table": "loans"}))
        assert spec.source.uri == listed  # a URL is not a path: left as written
        pd.testing.assert_frame_equal(load_real_data(spec), FRAME)
        assert load_real_data(load_spec(write_spec(tmp_path, {"uri": warehouse_url, "table": "loans"}))).shape == (4, 3)
        for url in (f"sqlite:///{other}", f"{warehouse_url}_other", f"{warehouse_url}?host=elsewhere",
                    warehouse_url.replace("postgres@", "admin@"), warehouse_url.replace("127.0.0.1", "127.0.0.2")):
            assert "field 'source.uri'" in refusal(write_spec(tmp_path, {"uri": url, "table": "loans"})), url


def test_allow_list_prefixes():
    data = "sqlite:////srv/warehouse/"
    assert sql_url_allowed("sqlite:////srv/warehouse/loans.db", [data])
    assert sql_url_allowed("sqlite:////srv/warehouse/2026/loans.db", [data])
    assert not sql_url_allowed("sqlite:////srv/warehouse/../airflow/airflow.db", [data])  # `..` is followed
    assert not sql_url_allowed("sqlite:////srv/warehouse-old/loans.db", [data])
    assert not sql_url_allowed("sqlite:////srv/warehouse/loans.db", ["sqlite:////srv/warehouse"])  # a file, exactly
    server = "postgresql://reader@db.internal:5432/"
    assert sql_url_allowed("postgresql://reader@db.internal:5432/loans", [server])
    assert sql_url_allowed("postgresql+psycopg2://reader:pw@db.internal:5432/loans", [server])  # driver, password
    assert not sql_url_allowed("postgresql://admin@db.internal:5432/loans", [server])
    assert not sql_url_allowed("postgresql://reader@db.internal:5433/loans", [server])
    assert not sql_url_allowed("postgresql://reader@db.internal:5432/loans?host=other", [server])
    assert not sql_url_allowed("mysql://reader@db.internal:5432/loans", [server])
    assert not sql_url_allowed("postgresql://reader@db.internal:5432/loans", [])
    with pytest.raises(SpecError, match="SYNTHCHAIN_ALLOWED_SQL: entry 'not a url' is not a database URL"):
        sql_url_allowed("postgresql://reader@db.internal/loans", ["not a url"])


# --- connections ----------------------------------------------------------------------------------------------------

def test_a_connection_id_reads_a_real_postgresql_table(tmp_path, warehouse_url, no_lookup):
    uri = warehouse_url.replace("postgresql://", "postgres://", 1)  # as Airflow writes it
    with environment(AIRFLOW_CONN_WAREHOUSE=uri):
        spec = load_spec(write_spec(tmp_path, {"connection": "warehouse", "table": "loans"}))
        assert spec.source.connection == "warehouse" and spec.source.uri is None
        pd.testing.assert_frame_equal(load_real_data(spec), FRAME)
        risk = read_source(SourceSpec(connection="warehouse", table="risk.loans"))  # schema.table
        assert len(risk) == 2
        with pytest.raises(SourceError, match="source connection 'warehouse': table 'nope' does not exist"):
            read_source(SourceSpec(connection="warehouse", table="nope"))
    # Airflow's JSON form, with its own field names (schema = the database)
    url = make_url(warehouse_url)
    conn = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username,
            "password": url.password, "schema": url.database, "extra": {"sslmode": "disable", "cursor": "dictcursor"}}
    with environment(AIRFLOW_CONN_WAREHOUSE=json.dumps(conn)):
        pd.testing.assert_frame_equal(read_source(SourceSpec(connection="warehouse", table="loans")), FRAME)


def test_a_connection_id_reads_a_real_sqlite_file(sqlite_file, tmp_path, no_lookup):
    json_form = json.dumps({"conn_type": "sqlite", "host": str(sqlite_file)})
    uri_form = f"sqlite://{quote(str(sqlite_file), safe='')}"  # Airflow's URI form: the path in the host
    for value in (json_form, uri_form):
        with environment(AIRFLOW_CONN_LOCAL_DB=value):
            spec = load_spec(write_spec(tmp_path, {"connection": "local_db", "table": "loans"}))
            pd.testing.assert_frame_equal(load_real_data(spec), FRAME)
    missing = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "gone.db")})
    with environment(AIRFLOW_CONN_LOCAL_DB=missing), pytest.raises(SourceError, match="gone.db does not exist"):
        read_source(SourceSpec(connection="local_db", table="loans"))
    assert not (tmp_path / "gone.db").exists()  # reading never creates a database file


def test_inside_airflow_the_registered_lookup_is_used(sqlite_file, no_lookup):
    """The DAG registers a Task SDK reader (synthchain.llm.endpoint.set_connection_lookup, as plugins do)."""
    from synthchain.llm.endpoint import set_connection_lookup

    asked = []

    def airflow_connection(conn_id):
        asked.append(conn_id)
        return {"conn_type": "sqlite", "host": str(sqlite_file), "extra": {}} if conn_id == "warehouse" else None

    set_connection_lookup(airflow_connection)
    assert len(read_source(SourceSpec(connection="warehouse", table="loans"))) == 4
    assert asked == ["warehouse"]


def test_an_unknown_connection_is_named(tmp_path, no_lookup):
    spec = load_spec(write_spec(tmp_path, {"connection": "nope", "table": "loans"}))  # checked when read
    with pytest.raises(SourceError) as err:
        load_real_data(spec)
    message = str(err.value)
    assert "connection 'nope': not found" in message and "AIRFLOW_CONN_NOPE" in message


def test_connections_that_are_not_databases_or_are_internal_are_refused(tmp_path, no_lookup):
    with environment(AIRFLOW_CONN_LLM=json.dumps({"conn_type": "http", "host": "127.0.0.1"})), \
            pytest.raises(SourceError, match="connection 'llm': conn_type 'http' is not a database"):
        read_source(SourceSpec(connection="llm", table="t"))
    with pytest.raises(SourceError, match="synthchain's provenance database; a spec may not read it"):
        read_source(SourceSpec(connection="synthchain_provenance", table="dataset_versions"))
    provenance = tmp_path / "prov.db"
    sqlite3.connect(provenance).close()
    with environment(SYNTHCHAIN_DB_URL=f"sqlite:///{provenance}",
                     AIRFLOW_CONN_SNEAKY=json.dumps({"conn_type": "sqlite", "host": str(provenance)})), \
            pytest.raises(SourceError, match="connection 'sneaky'.*names synthchain's provenance database"):
        read_source(SourceSpec(connection="sneaky", table="dataset_versions"))


def test_a_password_never_appears_in_a_read_error(no_lookup):
    conn = json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "reader",
                       "password": "hunter2", "schema": "db"})
    with environment(AIRFLOW_CONN_DEAD=conn), pytest.raises(SourceError) as err:
        read_source(SourceSpec(connection="dead", table="t"))
    assert "connection 'dead'" in str(err.value) and "cannot read" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_source_shape_is_checked(tmp_path):
    (tmp_path / "real.csv").write_text("amount,Class\n1,good\n")
    assert "field 'source.table': a connection source needs 'table'" in refusal(
        write_spec(tmp_path, {"connection": "warehouse"}))
    assert "field 'source.connection': give either 'uri' or 'connection'" in refusal(
        write_spec(tmp_path, {"connection": "warehouse", "uri": "real.csv", "table": "t"}))
    assert "field 'source.table': 'table' is only valid with 'connection'" in refusal(
        write_spec(tmp_path, {"uri": "real.csv", "table": "t"}))
    assert "field 'source.connection'" in refusal(write_spec(tmp_path, {"connection": "../x", "table": "t"}))


def test_connection_uris_parse_as_airflow_parses_them():
    from airflow.sdk import Connection

    for uri in ("postgresql://reader:p%40ss@db.internal:5433/warehouse?sslmode=require",
                "postgres://db.internal/warehouse", "sqlite://%2Fsrv%2FData%2Fwarehouse.db",
                "mysql://u:p@host/db?charset=utf8mb4", "https://:sk-2@api.example.com/v1",
                "http://127.0.0.1:8080", "my-conn-type://h/s?__extra__=%7B%22a%22%3A+1%7D"):
        ours = connections.parse_connection_uri(uri)
        theirs = Connection.from_uri(uri, conn_id="x")
        for field in ("conn_type", "host", "port", "schema", "login", "password"):
            assert (ours[field] or None) == (getattr(theirs, field) or None), (uri, field)
        assert ours["extra"] == theirs.extra_dejson, uri


# --- distillation inputs ---------------------------------------------------------------------------------------------

def test_distill_inputs_outside_the_data_roots_are_refused_naming_the_field(tmp_path):
    with environment(SYNTHCHAIN_DATA_ROOTS=""):
        folder = tmp_path / "specs"
        folder.mkdir()
        (folder / "real.csv").write_text("review,score\nfine,great\n")
        (tmp_path / "elsewhere.csv").write_text("body\nx\n")
        for uri in ("../elsewhere.csv", str(tmp_path / "elsewhere.csv"), "/etc/passwd"):
            spec = {"modality": "text", "text_column": "review", "label_column": "score",
                    "generators": [distill({"uri": uri, "columns": {"text": "body"}})]}
            path = folder / "text.yaml"
            path.write_text(yaml.safe_dump({"name": "t", "source": "real.csv", **spec}))
            message = refusal(path)
            assert "field 'generators.0.params.inputs.uri'" in message and "outside the data roots" in message
        # inside: a relative path resolves against the spec's folder, not the worker's working directory
        (folder / "unlabelled.csv").write_text("body\nx\n")
        spec["generators"] = [distill({"uri": "unlabelled.csv", "columns": {"text": "body"}})]
        path.write_text(yaml.safe_dump({"name": "t", "source": "real.csv", **spec}))
        loaded = load_spec(path)
        assert loaded.generators[0].params["inputs"]["uri"] == str((folder / "unlabelled.csv").resolve())
        assert loaded.with_overrides({}).generators[0].params == loaded.generators[0].params


def test_distill_inputs_shape_and_connection(tmp_path, sqlite_file, no_lookup):
    (tmp_path / "real.csv").write_text("review,score\nfine,great\n")
    base = {"name": "t", "source": "real.csv", "modality": "text", "text_column": "review", "label_column": "score"}
    for inputs, says in (({"uri": "x.csv", "colums": {}}, "generators.0.params.inputs': unknown key(s) ['colums']"),
                         ({"connection": "warehouse"}, "generators.0.params.inputs.table': a connection source needs"),
                         ("x.csv", "generators.0.params.inputs': expected a mapping")):
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump({**base, "generators": [distill(inputs)]}))
        assert f"field '{says}" in refusal(path)
    # a connection's table feeds the teacher like a file does
    from synthchain.text.llm_generator import OpenAICompatibleGenerator

    gen = OpenAICompatibleGenerator(connection="llm", model="m", strategy="distill",
                                    inputs={"connection": "warehouse", "table": "loans",
                                            "columns": {"text": "grade"}})
    with environment(AIRFLOW_CONN_WAREHOUSE=json.dumps({"conn_type": "sqlite", "host": str(sqlite_file)})):
        assert gen._load_inputs(None) == [{"text": g} for g in FRAME["grade"]]  # columns given: no profile needed
