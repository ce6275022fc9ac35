"""The Bento: `bentoml build` of a clean checkout (`git archive HEAD`) holds every module, template
and static file of the project's packages, and `bentoml serve` of that Bento (its own
BENTOML_HOME, a free port, the session's demo run and a key file) answers /readyz, an authorised
POST /recommend and the /ui/ login page.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, make_keys, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portrait", "features", "training", "serving", "experiments")


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> tuple[str, dict[str, str], Path]:
    """(tag, environment with its BENTOML_HOME, checkout) of a Bento built from HEAD."""
    head = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"],
                          capture_output=True)  # fmt: skip
    if head.returncode != 0:
        pytest.skip(f"not a git checkout: {head.stderr.decode()[-200:]}")
    base = tmp_path_factory.mktemp("bento")
    checkout = base / "checkout"
    with tarfile.open(fileobj=io.BytesIO(head.stdout)) as archive:
        archive.extractall(checkout, filter="data")
    env = dict(os.environ, BENTOML_HOME=str(base / "bentoml"), BENTOML_DO_NOT_TRACK="True")
    build = subprocess.run([sys.executable, "-m", "bentoml", "build", "--output", "tag"],
                           cwd=checkout, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    tag = re.search(r"__tag__:(\S+)", build.stdout).group(1)
    return tag, env, checkout


def test_the_bento_holds_every_module_template_and_static_file(bento):
    tag, env, checkout = bento
    name, version = tag.split(":")
    src = Path(env["BENTOML_HOME"]) / "bentos" / name / version / "src"
    wanted = {
        path.relative_to(checkout).as_posix()
        for package in PACKAGES
        for path in (checkout / package).rglob("*")
        if path.is_file() and path.suffix != ".md"
    }
    held = {path.relative_to(src).as_posix() for path in src.rglob("*") if path.is_file()}
    assert {"serving/service.py", "serving/ui/templates/base.html"} <= wanted
    assert sorted(wanted - held) == []
    assert not any(p.startswith(("tests/", "benchmarks/")) for p in held)


@pytest.fixture(scope="module")
def bento_server(bento, demo_run, tmp_path_factory):
    """`bentoml serve TAG` on a free port, outside the checkout, serving the session's demo run."""
    from serving.launch import serve_environment

    tag, env, _ = bento
    work = tmp_path_factory.mktemp("bento-serve")
    keys = make_keys(work / "keys.json")
    env = serve_environment(
        demo_run.run_dir, config=None, audit_log=work / "audit.jsonl", keys=work / "keys.json",
        overrides={"tracking.tracking_uri": demo_run.tracking_uri},
    ) | {"BENTOML_HOME": env["BENTOML_HOME"], "BENTOML_DO_NOT_TRACK": "True"}  # fmt: skip
    port = free_port()
    log = (work / "bento.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, timeout=300)
        yield url, keys
    except RuntimeError as exc:
        log.flush()
        raise RuntimeError(f"{exc}:\n{(work / 'bento.log').read_text()[-3000:]}") from exc
    finally:
        stop(process)
        log.close()


def test_the_bento_serves_the_api_and_the_pages(bento_server, demo_run):
    url, keys = bento_server
    assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    import pandas as pd

    cid = str(pd.read_parquet(demo_run.run_dir / "features.parquet")["customer_id"].iloc[0])
    body = {"customer_id": cid, "k": 3}
    assert httpx.post(f"{url}/recommend", json=body, timeout=30).status_code == 401
    answer = httpx.post(f"{url}/recommend", json=body, timeout=30,
                        headers={"Authorization": f"Bearer {keys['app']}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer_id"] == cid and 1 <= len(answer.json()["items"]) <= 3
    assert httpx.get(f"{url}/ui/", timeout=30).status_code == 401  # pages need a login too
    with httpx.Client(base_url=url, timeout=60) as browser:
        page = browser.get("/ui/login")  # the login page, from the Bento's own code
        assert page.status_code == 200 and 'action="/ui/login"' in page.text
        token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
        done = browser.post("/ui/login", data={"login_token": token, "next": "/ui/",
                                                "key": keys["pages"]})  # fmt: skip
        assert done.status_code == 303
        overview = browser.get("/ui/")  # a template of the Bento
        assert overview.status_code == 200 and "<html" in overview.text
        assert browser.get("/ui/static/ui.css").status_code == 200  # a static file of the Bento
