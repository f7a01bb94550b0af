import json

import pytest
from conftest import base_spec
from synthchain.ops.cli import main


def test_validate_spec(spec_file, capsys):
    assert main(["validate-spec", str(spec_file(base_spec()))]) == 0
    assert "ok (spec 'lc_test'" in capsys.readouterr().out
    bad = spec_file(base_spec(task="nope"), "bad.yaml")
    assert main(["validate-spec", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: field 'task'" in err


def test_run_versions_lineage_summary(spec_file, pg_url, store, tmp_path, capsys):
    path = spec_file(base_spec())
    args = ["--db-url", pg_url]
    assert main(["run", str(path), "--logical-date", "2026-02-01", "--storage", str(tmp_path / "s"), *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["real_rows"] == 7886
    assert main(["versions", "--json", *args]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert versions[0]["status"] == "published" and versions[0]["run_kind"] == "cli"
    assert [g["hop"] for g in versions[0]["gates"]][-1] == "evaluation"
    assert main(["versions", *args]) == 0
    assert "all passed" in capsys.readouterr().out
    assert main(["lineage", str(versions[0]["id"]), "--json", *args]) == 0
    lineage = json.loads(capsys.readouterr().out)
    assert sum(r["count"] for r in lineage["rows"]) == summary["rows"]
    assert main(["lineage", str(versions[0]["id"]), *args]) == 0
    assert "synthetic  cart" in capsys.readouterr().out
    assert main(["summary", "--spec", "lc_test", "--storage", str(tmp_path / "s"), *args]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "evaluation=pass" in out
    assert main(["lineage", "9999", *args]) == 2


def test_run_quarantined_exit_code_and_bad_source(spec_file, pg_url, store, tmp_path, capsys):
    strict = spec_file(base_spec(gates={"min_quality_score": 0.999}))
    assert main(["run", str(strict), "--storage", str(tmp_path / "s"), "--db-url", pg_url]) == 1
    assert "QUARANTINED: gate 'verification' failed" in capsys.readouterr().err
    missing = spec_file(base_spec(source="nowhere.csv"), "missing.yaml")
    assert main(["run", str(missing), "--storage", str(tmp_path / "s"), "--db-url", pg_url]) == 2
    assert "nowhere.csv does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(strict), "--logical-date", "yesterday"])
