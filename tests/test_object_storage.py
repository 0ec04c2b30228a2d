"""Shadow stores on S3-compatible object storage, with a moto server on loopback standing in for S3.

Credentials and the endpoint come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), as they would for MinIO or AWS; every test gets
a bucket of its own. Results read from object storage must equal the local ones exactly, and
every bad input must fail before anything is written to the bucket.
"""

from __future__ import annotations

import json
import logging
import pickle
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("moto.server", reason="object-storage tests need moto[server] (the 'test' extra)")
pytest.importorskip("s3fs", reason="object-storage tests need s3fs (the 'distributed' extra)")

import boto3
import s3fs
from moto.server import ThreadedMotoServer

from shadowlab.acquire.simulate import simulate
from shadowlab.data.dataset import ShadowData
from shadowlab.data.store import ShadowStore, is_store, write_store
from shadowlab.errors import ShadowlabError, StoreFormatError
from shadowlab.estimate.pauli import estimate_paulis
from shadowlab.paulis import PauliArrays

_KEY = "testing"  # moto accepts any credentials; these only have to be present


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, and the AWS environment pointing at it."""
    log = logging.getLogger("werkzeug")  # moto's server logs every request otherwise
    level = log.level
    log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", _KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", _KEY)
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_ENDPOINT_URL", url)
        # No proxy may intercept loopback, and no real AWS configuration may leak in.
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("no_proxy", "127.0.0.1,localhost")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield url
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()
            log.setLevel(level)


@pytest.fixture(autouse=True)
def _fresh_file_systems() -> Iterator[None]:
    # s3fs caches file systems by their arguments, with the credentials and endpoint they found in
    # the environment then: tests that change the environment must not leave theirs behind.
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def _client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=_KEY, aws_secret_access_key=_KEY,
                        region_name="us-east-1")


@pytest.fixture
def bucket(endpoint: str) -> str:
    """A fresh, empty bucket, as the URL ``s3://<name>``."""
    name = f"shadowlab-{uuid.uuid4().hex[:12]}"
    _client(endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


def _objects(endpoint: str, bucket: str) -> list[str]:
    listing = _client(endpoint).list_objects_v2(Bucket=bucket.removeprefix("s3://"))
    return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def data() -> ShadowData:
    return simulate("cluster:8", 3000, seed=5)


def _same(a, b) -> None:
    assert a.labels == b.labels
    for field in ("estimate", "stderr", "ci_low", "ci_high", "n_matched"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_round_trip_append_and_estimates_equal_local(endpoint, bucket, data, tmp_path):
    url = f"{bucket}/runs/cluster.zarr"
    store = write_store(data, url, chunk_snapshots=512)
    assert store.location == url and store.path == url and is_store(url)
    again = ShadowStore.open(url)
    assert again.load().equals(data)
    assert ShadowData.concatenate([c for _, c in again.iter_chunks(700)]).equals(data)
    summary = again.summary()
    assert summary["path"] == url and summary["disk_bytes"] > 0 and summary["n_snapshots"] == 3000
    # No temporary prefix is left next to the store.
    assert {k.split("/")[1] for k in _objects(endpoint, bucket)} == {"cluster.zarr"}

    more = simulate("cluster:8", 1000, seed=6)
    ShadowStore.open(url, mode="a").append(more)
    write_store(data, tmp_path / "local.zarr", chunk_snapshots=512)
    ShadowStore.open(tmp_path / "local.zarr", mode="a").append(more)
    local, remote = ShadowStore.open(tmp_path / "local.zarr"), ShadowStore.open(url)
    assert remote.n_snapshots == 4000 and remote.load().equals(local.load())
    obs = PauliArrays.up_to_weight(8, 2)
    _same(estimate_paulis(remote, obs), estimate_paulis(local, obs))


def test_failed_writes_leave_nothing(endpoint, bucket, data, monkeypatch):
    url = f"{bucket}/broken.zarr"

    def append_then_fail(self, *args, **kwargs):
        original_append(self, *args, **kwargs)
        raise RuntimeError("writer killed")

    original_append = ShadowStore.append
    with monkeypatch.context() as m:
        m.setattr(ShadowStore, "append", append_then_fail)
        with pytest.raises(RuntimeError, match="writer killed"):
            write_store(data, url, chunk_snapshots=512)
    assert _objects(endpoint, bucket) == []

    # A failure while the store is copied into place (the arrays are there, the root metadata is
    # not yet) removes what was copied.
    original_copy = s3fs.S3FileSystem._cp_file

    async def copy_arrays_then_fail(self, path1, path2, *args, **kwargs):
        if path1.endswith("/zarr.json") and path1.split("/")[-2].startswith(".broken.zarr.tmp-"):
            assert _objects(endpoint, bucket) != []  # the arrays were copied
            raise OSError("connection lost")
        return await original_copy(self, path1, path2, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(s3fs.S3FileSystem, "_cp_file", copy_arrays_then_fail)
        with pytest.raises(ShadowlabError, match="connection lost"):
            write_store(data, url, chunk_snapshots=512)
    assert _objects(endpoint, bucket) == []
    with pytest.raises(StoreFormatError, match="no such store"):
        ShadowStore.open(url)


def test_existing_store_needs_force(bucket, data):
    url = f"{bucket}/s.zarr"
    write_store(data.subset(0, 100), url)
    with pytest.raises(ShadowlabError, match="already exists"):
        write_store(data, url)
    with pytest.raises(ShadowlabError, match="already exists"):
        ShadowStore.create(url, 8)
    assert write_store(data, url, force=True).load().equals(data)


def test_pickled_store_reopens_with_its_storage_options(endpoint, bucket, data, monkeypatch):
    url = f"{bucket}/p.zarr"
    write_store(data, url, chunk_snapshots=512)
    # The endpoint given as a storage option, not in the environment, must travel with the store.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    store = ShadowStore.open(url, storage_options={"endpoint_url": endpoint})
    again = pickle.loads(pickle.dumps(store))
    assert (again.location, again.storage_options, again.n_snapshots) == (url, {"endpoint_url": endpoint}, 3000)
    np.testing.assert_array_equal(again.read(1000, 1700).outcomes, data.outcomes[1000:1700])


def test_dask_workers_estimate_from_the_bucket_like_one_process(bucket, data):
    from shadowlab.execution import Execution

    pytest.importorskip("distributed", reason="needs the 'distributed' extra")
    store = write_store(data, f"{bucket}/d.zarr", chunk_snapshots=512)
    obs = PauliArrays.up_to_weight(8, 2)
    # Two worker processes: each re-opens the store from its pickled location and reads its own chunks.
    distributed = estimate_paulis(store, obs, execution=Execution(workers=2, chunk_snapshots=512))
    _same(distributed, estimate_paulis(store, obs))


def test_cli_simulate_info_export_import(run, bucket):
    url = f"{bucket}/cli/ghz.zarr"
    r = run("simulate", "ghz:4", "--simulator", "statevector", "-n", "2000", "--seed", "3", "-o", url, "-q")
    assert r.exit_code == 0, r.stderr
    assert ShadowStore.open(url).load().equals(simulate("ghz:4", 2000, seed=3, simulator="statevector"))
    r = run("info", url, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["path"], summary["n_snapshots"], summary["n_qubits"]) == (url, 2000, 4)
    r = run("export", url, "-o", "ghz.npz")
    assert r.exit_code == 0, r.stderr
    r = run("import", "ghz.npz", "-o", f"{bucket}/cli/again.zarr")
    assert r.exit_code == 0, r.stderr
    assert ShadowStore.open(f"{bucket}/cli/again.zarr").load().equals(ShadowStore.open(url).load())
    r = run("simulate", "ghz:4", "-n", "10", "-o", url, "-q")
    assert r.exit_code == 1 and "already exists" in r.stderr


def test_cli_predict_from_a_url_equals_local(run, bucket, tmp_path):
    url = f"{bucket}/ghz.zarr"
    for out in (url, "ghz.zarr"):
        r = run("simulate", "ghz:4", "--simulator", "statevector", "-n", "2000", "--seed", "3", "-o", out, "-q")
        assert r.exit_code == 0, r.stderr
    (tmp_path / "obs.txt").write_text("2 Z 0 Z 1\n2 X 0 X 1\n")
    remote, local = (run("predict", where, "obs.txt", "--format", "json") for where in (url, "ghz.zarr"))
    assert remote.exit_code == 0, remote.stderr
    assert json.loads(remote.stdout)["estimates"] == json.loads(local.stdout)["estimates"]


def _fails_cleanly(result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr.replace("\n", " "), (fragment, result.stderr)


def test_no_credentials_fails_before_writing(run, endpoint, bucket, data, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = f"{bucket}/nocreds.zarr"
    with pytest.raises(ShadowlabError, match=r"s3://.*no AWS credentials found; set AWS_ACCESS_KEY_ID"):
        write_store(data, url)
    _fails_cleanly(run("simulate", "ghz:4", "-n", "100", "-o", url, "-q"), url, "no AWS credentials",
                   "AWS_ENDPOINT_URL")
    _fails_cleanly(run("info", url), "no AWS credentials")
    assert _objects(endpoint, bucket) == []


def test_missing_bucket_unknown_protocol_and_missing_store(run, bucket, data):
    with pytest.raises(StoreFormatError, match="bucket 'shadowlab-no-such-bucket' does not exist"):
        write_store(data, "s3://shadowlab-no-such-bucket/x.zarr")
    _fails_cleanly(run("simulate", "ghz:4", "-n", "100", "-o", "s3://shadowlab-no-such-bucket/x.zarr", "-q"),
                   "s3://shadowlab-no-such-bucket/x.zarr", "does not exist")
    with pytest.raises(StoreFormatError, match="unknown storage protocol 'nosuch'"):
        write_store(data, "nosuch://somewhere/x.zarr")
    _fails_cleanly(run("info", "nosuch://somewhere/x.zarr"), "unknown storage protocol")
    with pytest.raises(StoreFormatError, match="no such store"):
        ShadowStore.open(f"{bucket}/absent.zarr")
    _fails_cleanly(run("info", f"{bucket}/absent.zarr"), f"{bucket}/absent.zarr: no such store")
    with pytest.raises(ShadowlabError, match="names a bucket"):
        write_store(data, bucket)


def test_two_copy_store_on_object_storage(run, bucket):
    from shadowlab.twocopy.data import BellData
    from shadowlab.twocopy.store import BellStore, write_bell_store

    rng = np.random.default_rng(7)
    bell = BellData(rng.integers(0, 2, (300, 3), dtype=np.uint8), rng.integers(0, 2, (300, 3), dtype=np.uint8))
    url = f"{bucket}/bell.zarr"
    write_bell_store(bell, url, chunk_snapshots=128)
    again = BellStore.open(url).load()
    np.testing.assert_array_equal(again.a, bell.a)
    np.testing.assert_array_equal(again.c, bell.c)
    r = run("info", url, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["ensemble"], summary["n_shots"]) == ("bell_two_copy", 300) and summary["disk_bytes"] > 0
