import boto3
import pandas as pd
import pytest

from synthchain.storage import LocalStorage, S3Storage, StorageError, open_storage


@pytest.fixture(params=["local", "s3"])
def any_storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "root")
    endpoint = request.getfixturevalue("s3_endpoint")
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="synth")
    return open_storage("s3://synth/prefix")


def test_storage_contract(any_storage):
    frame = pd.DataFrame({"a": [1, 2, None], "b": ["x", "y", "z"]})
    uri = any_storage.write_parquet("runs/v1/data.parquet", frame)
    pd.testing.assert_frame_equal(any_storage.read_parquet(uri), frame)
    any_storage.write_json("runs/v1/meta.json", {"k": 1})
    assert any_storage.read_json("runs/v1/meta.json") == {"k": 1}
    assert any_storage.list("runs/v1") == ["runs/v1/data.parquet", "runs/v1/meta.json"]
    # overwrite replaces (idempotent writes)
    any_storage.write_json("runs/v1/meta.json", {"k": 2})
    assert any_storage.read_json(any_storage.uri("runs/v1/meta.json")) == {"k": 2}
    assert any_storage.move_prefix("runs/v1", "quarantine/v1") == 2
    assert any_storage.list("runs/v1") == [] and not any_storage.exists("runs/v1/meta.json")
    assert any_storage.read_json("quarantine/v1/meta.json") == {"k": 2}
    assert any_storage.delete_prefix("quarantine") == 2
    with pytest.raises(StorageError, match="no object"):
        any_storage.read_bytes("quarantine/v1/meta.json")


def test_s3_storage_uris(s3_endpoint):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="other")
    store = S3Storage("other", "p")
    assert store.uri("a/b") == "s3://other/p/a/b"
    with pytest.raises(StorageError, match="not in bucket"):
        store.key_of("s3://elsewhere/p/a")


def test_local_rejects_outside_root(tmp_path):
    store = LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError, match="outside storage root"):
        store.key_of((tmp_path / "elsewhere.txt").as_uri())
