"""`crier run` (what `make run` starts): from nothing to a working API key, and back."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from crier.platforms.sandbox.server import SAMPLE_REVIEWS

START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Running:
    """A `crier run` process whose output is read line by line as it comes."""

    def __init__(self, data_dir: Path, port: int, sandbox_port: int, **settings: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CRIER_") and k != "DATABASE_URL"
        }
        env.update(
            CRIER_DATA_DIR=str(data_dir),
            CRIER_PORT=str(port),
            CRIER_SANDBOX_PORT=str(sandbox_port),
            **{f"CRIER_{name.upper()}": value for name, value in settings.items()},
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crier.cli", "run"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no {marker!r} in:\n{''.join(self.output)}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def assert_published_by_the_worker(base: str, key: str, account_id: str) -> None:
    """A post due now is published by the worker `crier run` started (bounded wait)."""
    auth = {"Authorization": f"Bearer {key}"}
    post = httpx.post(
        f"{base}/v1/posts",
        headers=auth,
        json={
            "payload": {"text": "straight from make run"},
            "targets": [{"social_account_id": account_id}],
            "status": "scheduled",
            "publish_at": datetime.now(UTC).isoformat(),
        },
    )
    assert post.status_code == 201, post.text
    deadline = time.monotonic() + 30
    status = post.json()["status"]
    while status != "published" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = httpx.get(f"{base}/v1/posts/{post.json()['id']}", headers=auth).json()["status"]
    assert status == "published"
    deliveries = httpx.get(f"{base}/v1/posts/{post.json()['id']}/deliveries", headers=auth)
    assert deliveries.json()["data"][0]["permalink"]


def assert_reviews_synced_by_the_worker(base: str, key: str, account_id: str) -> None:
    """The sandbox account's location has sample reviews, which the worker syncs at once
    (bounded wait)."""
    auth = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 30
    reviews: list[dict[str, object]] = []
    while len(reviews) < len(SAMPLE_REVIEWS) and time.monotonic() < deadline:
        time.sleep(0.2)
        listed = httpx.get(
            f"{base}/v1/reviews", headers=auth, params={"social_account_id": account_id}
        )
        reviews = listed.json()["data"]
    assert len(reviews) == len(SAMPLE_REVIEWS)
    assert {r["rating"] for r in reviews} == {1, 2, 3, 4, 5}
    scored = {
        r["reviewer_name"]: (r["sentiment_label"], r["sentiment_source"], r["language"])
        for r in reviews
    }
    assert scored["Maria K."] == ("positive", "text", "en")
    assert scored["Jonas W."] == ("negative", "text", "en")
    assert scored["Lena P."] == ("positive", "rating", None)  # stars alone
    assert scored["Sofía R."] == ("positive", "rating", "es")
    [state] = httpx.get(f"{base}/v1/reviews/sync", headers=auth).json()["data"]
    assert state["last_error"] is None
    assert state["network_total"] == len(SAMPLE_REVIEWS)


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_first_post(api: str, key: str) -> str:
    """The README's first-post commands, aimed at this server."""
    text = README.read_text()
    start = text.index("```sh\nAPI=") + len("```sh\n")
    script = text[start : text.index("```", start)]
    return script.replace("http://127.0.0.1:8000/v1", api).replace("$KEY", key)


def assert_readme_example_works_twice(base: str, key: str) -> None:
    """The quick start's example schedules a post each time it is run, not only the first."""
    bash = shutil.which("bash")
    assert bash is not None
    for _ in range(2):
        ran = subprocess.run(  # noqa: S603 (the script is this repository's README)
            [bash, "-euo", "pipefail", "-c", readme_first_post(f"{base}/v1", key)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        post = json.loads(ran.stdout)
        assert post.get("status") == "scheduled", ran.stdout


def postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_starts_everything_prints_a_key_and_stops_cleanly(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    first = Running(tmp_path, port, sandbox_port)
    try:
        key = first.wait_for("API key:").split()[-1]
        assert "created now" in "".join(first.output)
        first.wait_for("Press Ctrl-C")
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/docs" in "".join(first.output)
        response = httpx.get(f"{base}/v1/workspace", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert response.json()["slug"] == "demo"
        account = httpx.post(
            f"{base}/v1/social-accounts",
            json={"platform": "sandbox"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert account.status_code == 201
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        assert sandbox in "".join(first.output)
        token = httpx.post(f"{sandbox}/oauth/token", data={"grant_type": "client_credentials"})
        assert token.status_code == 200
        assert_published_by_the_worker(base, key, account.json()["id"])
        assert_reviews_synced_by_the_worker(base, key, account.json()["id"])
    finally:
        code = first.interrupt()
    assert code == 0, "".join(first.output)
    assert not postmaster_running(tmp_path), "the embedded database outlived Ctrl-C"

    second = Running(tmp_path, port, sandbox_port)

    try:
        again = second.wait_for("API key:").split()[-1]
        second.wait_for("Press Ctrl-C")
        assert again == key
        assert "created now" not in "".join(second.output)
        accounts = httpx.get(
            f"http://127.0.0.1:{port}/v1/social-accounts",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert [a["id"] for a in accounts.json()["data"]] == [account.json()["id"]]
        assert_readme_example_works_twice(f"http://127.0.0.1:{port}", key)
    finally:
        assert second.interrupt() == 0


def test_one_ctrl_c_stops_it_within_the_grace_period_despite_a_request_in_flight(
    tmp_path: Path,
) -> None:
    """A client that never finishes its request cannot hold the server up past the grace."""
    port = free_port()
    running = Running(tmp_path, port, free_port(), shutdown_grace_seconds="1")
    running.wait_for("Press Ctrl-C")
    stalled = socket.create_connection(("127.0.0.1", port))
    try:
        stalled.sendall(
            b"POST /v1/posts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        time.sleep(0.5)  # let the server start reading the body that never comes
        started = time.monotonic()
        code = running.interrupt()
        took = time.monotonic() - started
    finally:
        stalled.close()
    assert code == 0, "".join(running.output)
    assert took < 15, f"stopping took {took:.1f}s"
    assert not postmaster_running(tmp_path)


def test_the_database_stops_with_the_last_process_though_others_were_killed(
    tmp_path: Path,
) -> None:
    """A worker killed with SIGKILL never releases its hold on the embedded database; the
    last Crier process to exit cleanly stops the database all the same."""
    running = Running(tmp_path, free_port(), free_port())
    running.wait_for("Press Ctrl-C")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CRIER_") and k != "DATABASE_URL"
    }
    env.update(CRIER_DATA_DIR=str(tmp_path), CRIER_WORKER_METRICS_PORT="0")
    worker = subprocess.Popen(
        [sys.executable, "-m", "crier.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        holders = tmp_path / "pgdata" / ".handle_pids.json"
        deadline = time.monotonic() + START_TIMEOUT
        while worker.pid not in json.loads(holders.read_text()) and time.monotonic() < deadline:
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.1)
        assert worker.pid in json.loads(holders.read_text())
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert running.interrupt() == 0, "".join(running.output)
    outlived = postmaster_running(tmp_path)
    if outlived:  # leave no server behind, whatever the outcome
        os.kill(int((tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0]), 15)
    assert not outlived, "the embedded database outlived its last process"


def test_serve_with_several_workers_answers_from_each(tmp_path: Path) -> None:
    """`crier serve --workers 2` on an external database (here: a fresh embedded one)."""
    from crier.kit.db import migrate as migrations
    from crier.kit.db.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "db", delete_on_exit=True)
    urls = embedded.start()
    try:
        migrations.upgrade(urls.owner)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update(
            DATABASE_URL=urls.owner.render_as_string(hide_password=False),
            CRIER_APP_DATABASE_URL=urls.app.render_as_string(hide_password=False),
            CRIER_DATA_DIR=str(tmp_path / "data"),
            CRIER_PORT=str(port),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "crier.cli", "serve", "--workers", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            ready = False
            while time.monotonic() < deadline and not ready:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
                except httpx.TransportError:
                    time.sleep(0.2)
            assert ready, "the workers never became ready"
            unauthenticated = httpx.get(f"http://127.0.0.1:{port}/v1/workspace")
            assert unauthenticated.status_code == 401
            assert unauthenticated.headers["content-type"] == "application/problem+json"
        finally:
            process.send_signal(signal.SIGINT)
            output = process.communicate(timeout=60)[0]
        assert process.returncode == 0, output
        assert output.count("Started server process") >= 2, output
    finally:
        embedded.stop()
