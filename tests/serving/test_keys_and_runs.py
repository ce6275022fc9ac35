"""Key files, the route table, the run manifest, reload targets and the bounded logs, in process."""

from __future__ import annotations

import json
import os

import pytest

from serving.audit import ExclusionAudit, Exclusions, read_audit
from serving.keys import KeysError, KeyStore, add_key, find, read_keys, revoke_key
from serving.logs import JsonLinesLog
from serving.routes import route_of
from serving.runs import RunRefused, reload_target, scrub
from training.manifest import ManifestError, verified_bytes, verify_run, write_manifest


def test_keys_are_stored_hashed_0600_and_revocable(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "alice", roles=["staff", "marketer"])
    assert key.startswith("pk_") and len(key) > 40 and key not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    found = find(read_keys(path), key)
    assert found.name == "alice" and found.roles == {"staff", "marketer"}
    assert find(read_keys(path), key + "x") is None
    store = KeyStore(path)
    assert store.lookup(key).name == "alice"
    revoke_key(path, "alice")
    os.utime(path, ns=(1, 1))  # a new mtime even within the same clock tick
    assert store.lookup(key) is None and store.roles_of("alice") is None
    with pytest.raises(KeysError, match="unknown"):
        add_key(path, "bob", roles=["root"])
    with pytest.raises(KeysError, match="revoke it first"):
        add_key(path, "carol", roles=["app"]) and add_key(path, "carol", roles=["app"])


@pytest.mark.parametrize(
    ("path", "template", "roles"),
    [
        ("/livez", "/livez", None),
        ("/recommend", "/recommend", {"app"}),
        ("/ui/customers/C1", "/ui/customers/{customer_id}", {"staff"}),
        ("/ui/customers/a/b", "/ui/customers/{customer_id}", {"staff"}),
        ("/ui/audiences/download", "/ui/audiences/download", {"marketer"}),
        ("/docs.json", "/docs.json", {"admin"}),
        ("/C000001/secret", "other", {"admin"}),
        ("/ui/static/ui.css", "/ui/static/{path}", None),
    ],
)
def test_every_path_has_a_role_and_a_template(path, template, roles):
    rule = route_of(path)
    assert rule.template == template and (rule.roles == roles if roles else rule.roles is None)


def fake_run(tmp_path):
    run = tmp_path / "runs" / "r1"
    (run / "rule_base").mkdir(parents=True)
    for name in ("quality.json", "features.parquet", "segments.parquet", "segmentation.pkl",
                 "churn_scores.parquet", "rule_base/rules.parquet"):  # fmt: skip
        (run / name).write_bytes(name.encode())
    return run


def test_manifest_verifies_and_refuses_changes_missing_parts_and_unvouched(tmp_path):
    run = fake_run(tmp_path)
    digest = write_manifest(run, run_id="a" * 32, models={})
    manifest = verify_run(run, vouched=lambda run_id: digest)
    assert verified_bytes(run, "segmentation.pkl", manifest) == b"segmentation.pkl"
    with pytest.raises(ManifestError, match="MLflow run"):
        verify_run(run, vouched=lambda run_id: "other")
    (run / "segmentation.pkl").write_bytes(b"evil")
    with pytest.raises(ManifestError, match="segmentation.pkl .* changed"):
        verify_run(run)
    (run / "segmentation.pkl").unlink()
    write_manifest(run, run_id="a" * 32, models={})
    with pytest.raises(ManifestError, match="lacks segmentation.pkl"):
        verify_run(run)
    assert str(tmp_path) not in str(ManifestError)


def test_reload_targets_stay_under_the_run_roots(tmp_path):
    run = fake_run(tmp_path)
    roots = [run.parent]
    assert reload_target(run_dir="r1", run_id=None, roots=roots, served=run) == run
    assert reload_target(run_dir=None, run_id=None, roots=roots, served=run) == run
    for bad in ("/etc", "../..", "r1/../../x", "a\x00b", str(tmp_path)):
        with pytest.raises(RunRefused):
            reload_target(run_dir=bad, run_id=None, roots=roots, served=run)
    write_manifest(run, run_id="b" * 32, models={})
    assert reload_target(run_dir=None, run_id="b" * 32, roots=roots, served=run) == run
    with pytest.raises(RunRefused):
        reload_target(run_dir=None, run_id="../etc", roots=roots, served=run)
    assert scrub("cannot read /srv/runs/r1/x.parquet now") == "cannot read x.parquet now"


def test_a_log_that_cannot_be_written_never_raises(tmp_path):
    (tmp_path / "log.jsonl").mkdir()  # opening it as a file fails, as on a full or gone disk
    log = JsonLinesLog(tmp_path / "log.jsonl", log="test", max_bytes=1000, backups=1)
    log.write({"who": "x"})  # counted in /metrics, never raised
    log.close()


def test_logs_rotate_with_a_size_bound_and_mode_0600(tmp_path):
    log = JsonLinesLog(tmp_path / "a.jsonl", log="test", max_bytes=2000, backups=2)
    for i in range(500):
        log.write({"i": i, "pad": "x" * 50})
    log.close()
    files = sorted(tmp_path.glob("a.jsonl*"))
    assert [f.name for f in files] == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]
    assert all(f.stat().st_size <= 2100 for f in files)
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)


def test_exclusion_audit_writes_a_repeated_answer_once_but_counts_it(tmp_path):
    audit = ExclusionAudit(tmp_path / "audit.jsonl")
    excluded = Exclusions("C1", ["P1", "P2", "P3"], ["risk_above_customer", "held", "held"])
    at = __import__("pandas").Timestamp("2025-11-01T10:00Z")
    for _ in range(3):
        assert audit.record(excluded, model_version="v", at=at) == {
            "risk_above_customer": 1,
            "held": 2,
        }
    audit.log.close()
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["excluded"] == {"held": ["P2", "P3"],
                                                                   "risk_above_customer": ["P1"]}  # fmt: skip
    assert audit.totals == {"held": 6, "risk_above_customer": 3}
    assert len(read_audit(tmp_path / "audit.jsonl")) == 3


def test_a_rejected_body_is_logged_as_one_line_without_the_input():
    import logging
    import sys

    from pydantic import BaseModel, ValidationError

    from serving.logs import ClientErrorFilter

    class Body(BaseModel):
        k: int

    try:
        Body(k="secret-input-123")
    except ValidationError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("bentoml._internal.server.http_app", logging.ERROR, __file__, 1,
                               "Exception on %s [%s]", ("/ui/customers/C42", "POST"), exc_info)  # fmt: skip
    assert ClientErrorFilter().filter(record)
    text = logging.Formatter().format(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "secret-input-123" not in text and "C42" not in text
    assert "/ui/customers/{customer_id}" in text and "ValidationError" in text


def test_keys_command_prints_the_key_once_as_its_last_line(tmp_path, capsys):
    from portrait.cli import main

    path = tmp_path / "keys.json"
    assert main(["keys", "add", "app-1", "--role", "app", "--keys", str(path)]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert find(read_keys(path), key).name == "app-1"
    assert main(["keys", "list", "--keys", str(path)]) == 0
    listed = capsys.readouterr().out
    assert "app-1\tapp" in listed and key not in listed
    assert main(["keys", "revoke", "app-1", "--keys", str(path)]) == 0
    assert read_keys(path) == {}


def test_serve_refuses_to_start_without_keys_unless_insecure_local(tmp_path):
    from portrait.errors import PortraitError
    from serving.launch import check_keys

    with pytest.raises(PortraitError, match="no API keys"):
        check_keys(None, insecure_local=False, host="127.0.0.1")
    with pytest.raises(PortraitError, match="127.0.0.1 only"):
        check_keys(None, insecure_local=True, host="0.0.0.0")
    assert check_keys(None, insecure_local=True, host="127.0.0.1") is None
    with pytest.raises(PortraitError, match="holds no key"):
        check_keys(tmp_path / "empty.json", insecure_local=False, host="127.0.0.1")
    add_key(tmp_path / "k.json", "a", roles=["admin"])
    assert (
        check_keys(tmp_path / "k.json", insecure_local=False, host="0.0.0.0") == tmp_path / "k.json"
    )


def test_a_full_disk_costs_no_answer_and_is_counted(tmp_path, monkeypatch):
    import errno

    from serving import http_metrics, logs

    failures = []
    monkeypatch.setattr(logs, "count_log_failure", failures.append)
    monkeypatch.setattr(http_metrics, "count_log_failure", failures.append)
    log = JsonLinesLog(tmp_path / "a.jsonl", log="access", max_bytes=10_000, backups=1)
    handler = log._logger.handlers[0]

    class FullDisk:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(handler, "_open", FullDisk)
    log.write({"who": "x"})  # never raises
    log.write({"who": "y"})
    assert failures == ["access", "access"]
