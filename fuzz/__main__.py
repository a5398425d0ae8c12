"""`make fuzz`: schemathesis over every operation of Crier's OpenAPI description.

A fresh embedded PostgreSQL, `crier serve` and `crier sandbox` on loopback ports (no
scheduler and no webhook dispatcher, so that nothing the fuzzer creates is ever sent
anywhere), a workspace on the largest plan with its owner's real API key, and one resource
of every kind whose ids the fuzzer is given, so that it reaches past "not found". Every
check schemathesis has runs, with the answers the schema cannot state listed in
fuzz/schemathesis.toml, and fuzz/hooks.py adds that every error is a problem document.

Two runs, each bounded: the examples, coverage and fuzzing phases for CRIER_FUZZ_SECONDS
(default 120), then stateful sequences of calls (create, read, change, delete) for half as
long; either is stopped if it overruns its budget by two minutes. CRIER_FUZZ_SEED replays
a run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench.common import crier_server, database, workspace_key

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_SECONDS = 120
OVERRUN_SECONDS = 120


def _seed_resources(base: str, key: str) -> dict[str, str]:
    """One resource of each kind, by the name of the path parameter that takes its id."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{base}/v1", headers=auth, timeout=30) as api:

        def made(response: httpx.Response) -> dict[str, str]:
            if response.status_code not in (201, 202):
                raise RuntimeError(f"seeding failed: {response.status_code} {response.text}")
            body: dict[str, str] = response.json()
            return body

        account = made(api.post("/social-accounts", json={"platform": "sandbox"}))["id"]
        post = made(
            api.post(
                "/posts",
                json={"payload": {"text": "fuzz"}, "targets": [{"social_account_id": account}]},
            )
        )["id"]
        member = made(
            api.post("/members", json={"email": "m@example.com", "name": "M", "role": "editor"})
        )["id"]
        key_id = made(api.post("/api-keys", json={"name": "fuzz"}))["id"]
        endpoint = made(
            api.post("/webhook-endpoints", json={"url": "https://hooks.example.com/crier"})
        )["id"]
        event = made(api.post(f"/webhook-endpoints/{endpoint}/test"))["event_id"]
    return {
        "account_id": account,
        "post_id": post,
        "member_id": member,
        "key_id": key_id,
        "endpoint_id": endpoint,
        "event_id": event,
    }


# Ids no operation's answer links to (its links find the others): given to the fuzzer.
PINNED = ("event_id",)


def _config(folder: Path, ids: dict[str, str]) -> Path:
    """fuzz/schemathesis.toml, plus seeded ids for the path parameters nothing links to."""
    lines = [(HERE / "schemathesis.toml").read_text(), "", "[parameters]"]
    lines += [f'"path.{name}" = "{ids[name]}"' for name in PINNED]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _schemathesis(base: str, key: str, config: Path, phases: str, seconds: int) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--max-time",
        str(seconds),
        # One worker: hypothesis's description of its strategies is not thread-safe.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--phases",
        phases,
        "--warnings",
        "off",
    ]
    if seed := os.environ.get("CRIER_FUZZ_SEED"):
        command += ["--seed", seed]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz.hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    try:
        # The command line is ours; only the key and URLs vary.
        ran = subprocess.run(command, env=env, timeout=seconds + OVERRUN_SECONDS)  # noqa: S603
    except subprocess.TimeoutExpired:
        print(f"schemathesis overran its {seconds} s budget by {OVERRUN_SECONDS} s: stopped")
        return 1
    print(f"schemathesis {phases}: {time.monotonic() - started:.0f} s")
    return ran.returncode


def main() -> int:
    seconds = int(os.environ.get("CRIER_FUZZ_SECONDS", DEFAULT_SECONDS))
    with tempfile.TemporaryDirectory(prefix="crier-fuzz-") as folder:
        root = Path(folder)
        with database(root) as urls:
            key = asyncio.run(workspace_key(urls, "Fuzz"))
            with crier_server(urls, root) as base:
                config = _config(root, _seed_resources(base, key))
                single = _schemathesis(base, key, config, "examples,coverage,fuzzing", seconds)
                stateful = _schemathesis(base, key, config, "stateful", seconds // 2)
                return single or stateful


if __name__ == "__main__":
    sys.exit(main())
