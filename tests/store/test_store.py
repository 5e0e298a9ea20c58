"""The artifact store: checksums verified on read, damage reported, claims, full disks and read-only folders."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import torch

from auglens import store as store_module
from auglens.store import ArtifactError, ArtifactStore, StoreWriteError


def _tensors():
    return {"w": torch.arange(1000, dtype=torch.float32).reshape(10, 100), "b": torch.ones(3)}


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return ArtifactStore(tmp_path / "artifacts")
    return ArtifactStore(f"memory://auglens-store-{uuid.uuid4().hex}")


def _overwrite(store: ArtifactStore, kind: str, key: str, ext: str, data: bytes) -> None:
    """Damage an artifact behind the store's back (no checksum update)."""
    target = store.path(kind, key, ext)
    if store._fs:
        store._fs.pipe_file(target, data)
    else:
        Path(target).write_bytes(data)


# ------------------------------------------------------------------------------------------ checksums

def test_written_artifacts_read_back_verified(store):
    store.save_tensors("cams", "k1", _tensors())
    store.save_json("histories", "k1", {"best_epoch": 2})
    loaded = store.load_tensors("cams", "k1")
    assert torch.equal(loaded["w"], _tensors()["w"])
    assert store.load_json("histories", "k1") == {"best_epoch": 2}
    assert store.check("cams", "k1", "safetensors").ok
    assert sorted(store.artifacts()) == [("cams", "k1", "safetensors"), ("histories", "k1", "json")]


@pytest.mark.parametrize("damage, problem", [
    (lambda data: data[: len(data) // 2], "truncated"),
    (lambda data: data + b"\0" * 10, "corrupt"),
    (lambda data: bytes(255 - b for b in data), "corrupt"),  # same length, every byte wrong
    (lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:], "corrupt"),  # one flipped bit
])
def test_damaged_artifacts_are_reported_not_deserialised(store, damage, problem):
    store.save_tensors("checkpoints", "abc", _tensors())
    original = store.read_bytes("checkpoints", "abc", "safetensors")
    _overwrite(store, "checkpoints", "abc", "safetensors", damage(original))
    status = store.check("checkpoints", "abc", "safetensors")
    assert not status.ok and status.problem.startswith(problem)
    with pytest.raises(ArtifactError, match=rf"checkpoints artifact abc\.safetensors is {problem}") as caught:
        store.load_tensors("checkpoints", "abc")
    assert (caught.value.kind, caught.value.key) == ("checkpoints", "abc")


def test_missing_artifact_and_missing_checksum_are_reported(store):
    assert store.check("cams", "nothing", "safetensors").problem == "missing"
    with pytest.raises(ArtifactError, match="is missing"):
        store.load_tensors("cams", "nothing")
    store.save_json("histories", "h", {"a": 1})
    store._remove(store.path("histories", "h", "json") + ".sha256")
    assert store.check("histories", "h", "json").problem == "without a checksum"
    with pytest.raises(ArtifactError, match="without a checksum"):
        store.load_json("histories", "h")


def test_delete_removes_the_checksum_too(store):
    store.save_json("histories", "h", {"a": 1})
    store.delete("histories", "h", "json")
    assert not store.exists("histories", "h", "json")
    assert not store._exists(store.path("histories", "h", "json") + ".sha256")
    store.save_json("histories", "h", {"a": 2})  # a rewrite after deletion is sound again
    assert store.load_json("histories", "h") == {"a": 2}


def test_checksum_matches_an_independent_sha256(tmp_path):
    import hashlib

    store = ArtifactStore(tmp_path)
    path = store.save_json("histories", "x", {"v": [1, 2, 3]})
    record = json.loads(Path(path + ".sha256").read_text())
    data = Path(path).read_bytes()
    assert record == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# ------------------------------------------------------------------------------------------ failing writes

def _fail_with(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_full_disk_or_read_only_folder_names_the_folder_and_leaves_nothing(tmp_path, monkeypatch, code, step):
    store = ArtifactStore(tmp_path / "artifacts")
    store.save_json("histories", "old", {"kept": True})
    monkeypatch.setattr(store_module.os, step, _fail_with(code))
    with pytest.raises(StoreWriteError) as caught:
        store.save_tensors("checkpoints", "new", _tensors())
    message = str(caught.value)
    folder = str(tmp_path / "artifacts" / "checkpoints")
    assert folder in message and errno.errorcode[code] in message and "rerun the same command" in message
    assert caught.value.errno == code
    monkeypatch.undo()
    leftovers = sorted(p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    # Nothing of the failed artifact but (for a failure at the artifact's own write) its checksum record,
    # which a rerun overwrites; no temporary, no partial artifact.
    assert not [name for name in leftovers if ".tmp-" in name or name == "new.safetensors"]
    assert store.check("checkpoints", "new", "safetensors").problem == "missing"
    # The next run continues: the same write now succeeds and the older artifact is intact.
    store.save_tensors("checkpoints", "new", _tensors())
    assert store.check("checkpoints", "new", "safetensors").ok
    assert store.load_json("histories", "old") == {"kept": True}


def test_a_write_refused_at_open_leaves_nothing(tmp_path, monkeypatch):
    """A read-only folder refuses the temporary file itself (EROFS/EACCES at open)."""
    store = ArtifactStore(tmp_path / "artifacts")
    monkeypatch.setattr(store_module, "open", _fail_with(errno.EACCES), raising=False)
    with pytest.raises(StoreWriteError, match="make the folder writable"):
        store.save_json("histories", "x", {})
    monkeypatch.undo()
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []


def test_a_read_only_store_root_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module.Path, "mkdir", _fail_with(errno.EROFS))
    with pytest.raises(StoreWriteError, match=str(tmp_path / "ro")):
        ArtifactStore(tmp_path / "ro")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    store.save_json("histories", "x", {})
    os.chmod(tmp_path / "artifacts" / "histories", 0o555)
    try:
        with pytest.raises(StoreWriteError, match="histories"):
            store.save_json("histories", "y", {})
    finally:
        os.chmod(tmp_path / "artifacts" / "histories", 0o755)


def test_other_errors_are_not_disguised(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    monkeypatch.setattr(store_module.os, "fsync", _fail_with(errno.EIO))
    with pytest.raises(OSError) as caught:
        store.save_json("histories", "x", {})
    assert not isinstance(caught.value, StoreWriteError) and caught.value.errno == errno.EIO
    monkeypatch.undo()
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    store = ArtifactStore(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    host = store_module._HOST
    mine = folder / f"a.safetensors.tmp-{host}-{os.getpid()}-abc123"
    gone = folder / f"b.safetensors.tmp-{host}-{dead}-abc123"
    elsewhere = folder / "c.safetensors.tmp-otherhost-1-abc123"
    old_elsewhere = folder / "d.safetensors.tmp-otherhost-1-abc124"
    for path in (mine, gone, elsewhere, old_elsewhere):
        path.write_bytes(b"partial")
    os.utime(old_elsewhere, (time.time() - 2 * store_module.TEMP_TTL,) * 2)
    assert store.remove_stale_temporaries() == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted([mine.name, elsewhere.name])


# ------------------------------------------------------------------------------------------ claims

def test_a_claim_is_exclusive_until_released(store):
    first = store.try_claim("train-k")
    assert first is not None
    assert store.try_claim("train-k") is None
    assert store.claim_holder("train-k")["pid"] == os.getpid()
    assert store.try_claim("train-other") is not None
    first.release()
    assert store.claim_holder("train-k") is None
    with store.try_claim("train-k") as again:
        assert again.held()


def test_the_heartbeat_keeps_a_claim_fresh_beyond_its_ttl(tmp_path):
    store = ArtifactStore(tmp_path, claim_ttl=0.4)
    with store.try_claim("train-k") as claim:
        time.sleep(1.2)
        assert ArtifactStore(tmp_path, claim_ttl=0.4).try_claim("train-k") is None
        assert claim.held() and not claim.lost


def test_a_claim_without_heartbeat_expires_and_is_taken_over(store):
    path = store._claim_path("train-k")
    old = {"token": "t0", "host": "another_host", "pid": 1, "heartbeat": time.time() - store.claim_ttl - 1}
    store_module.write_atomic(path, json.dumps(old).encode(), store._fs)
    claim = store.try_claim("train-k")
    assert claim is not None and store.claim_holder("train-k")["token"] == claim.token
    claim.release()
    fresh = {**old, "heartbeat": time.time()}
    store_module.write_atomic(path, json.dumps(fresh).encode(), store._fs)
    assert store.try_claim("train-k") is None  # another host's fresh claim is respected


def test_a_taken_over_holder_learns_it_lost_the_claim(tmp_path):
    store = ArtifactStore(tmp_path, claim_ttl=0.3)
    claim = store.try_claim("train-k")
    claim._stop.set()  # as if the holder were frozen: no heartbeat
    claim._thread.join()
    stale = {**json.loads(Path(claim.path).read_bytes()), "host": "another_host"}
    Path(claim.path).write_text(json.dumps(stale))
    time.sleep(0.4)
    other = store.try_claim("train-k")
    assert other is not None
    claim.refresh()
    assert claim.lost and other.held()
    claim.release()  # must not remove the new holder's claim
    assert other.held()
    other.release()


CLAIMER = textwrap.dedent("""
    import os, signal, sys
    from auglens.store import ArtifactStore
    claim = ArtifactStore(sys.argv[1]).try_claim("train-k")
    print("claimed" if claim else "refused", flush=True)
    sys.stdin.readline()
""")


def _python_env():
    return {**os.environ, "PYTHONPATH": str(Path(store_module.__file__).parents[1])}


def test_a_killed_holder_leaves_no_stuck_claim(tmp_path):
    """kill -9 of the holder: on the same host the claim is free at once, without waiting for the TTL."""
    holder = subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=_python_env())
    try:
        assert holder.stdout.readline().strip() == "claimed"
        store = ArtifactStore(tmp_path, claim_ttl=3600)
        assert store.try_claim("train-k") is None  # alive: respected
    finally:
        holder.kill()
        holder.wait()
    claim = store.try_claim("train-k")
    assert claim is not None
    claim.release()


WORKER = textwrap.dedent("""
    import json, os, sys, time
    from auglens.store import ArtifactStore
    store = ArtifactStore(sys.argv[1], claim_ttl=5)
    log = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    pending = [f"job{i}" for i in range(8)]
    while pending:
        for job in list(pending):
            if store.exists("results", job, "json"):
                pending.remove(job)
                continue
            claim = store.try_claim(job)
            if claim is None:
                continue
            with claim:
                if store.exists("results", job, "json"):
                    continue
                with open(log, "a") as handle:
                    handle.write(json.dumps([job, os.getpid(), "start", time.time()]) + "\\n")
                time.sleep(0.15)
                with open(log, "a") as handle:
                    handle.write(json.dumps([job, os.getpid(), "end", time.time()]) + "\\n")
                store.save_json("results", job, {"by": os.getpid()})
        time.sleep(0.02)
""")


def test_two_processes_on_one_store_never_compute_a_job_twice(tmp_path):
    log = tmp_path / "log.jsonl"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "store"), str(log)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_python_env())
               for _ in range(2)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [e for e in events if e[2] == "start"]
    assert sorted(e[0] for e in starts) == sorted(f"job{i}" for i in range(8))  # each job computed once
    assert len({e[1] for e in starts}) == 2  # and both processes did some of the work
    store = ArtifactStore(tmp_path / "store")
    assert all(store.check("results", f"job{i}", "json").ok for i in range(8))
    assert list((tmp_path / "store" / "claims").glob("*.claim")) == []


def test_sound_deletes_a_damaged_artifact_so_the_caller_recomputes_it(store, caplog):
    store.save_json("results", "r", {"v": 1})
    assert store.sound("results", "r", "json")
    assert not store.sound("results", "absent", "json")
    _overwrite(store, "results", "r", "json", b"{}")
    with caplog.at_level("WARNING", logger="auglens"):
        assert not store.sound("results", "r", "json")
    assert "results artifact r.json is truncated" in caplog.text
    assert not store.exists("results", "r", "json")
