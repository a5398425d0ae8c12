"""The `crier` command: run the server, migrate, and administer workspaces."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import uvicorn
from sqlalchemy.engine import URL

from crier.auth.permissions import Permission
from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db import migrate as migrations
from crier.kit.db.engine import UnsafeApplicationRole
from crier.kit.db.server import database_server
from crier.kit.errors import CrierError
from crier.kit.logs import configure as configure_logs
from crier.runtime import Runtime

cli = typer.Typer(
    help="Crier: self-hostable social-media scheduling with a public REST API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workspace_cli = typer.Typer(help="Create workspaces (operator commands).", no_args_is_help=True)
api_key_cli = typer.Typer(help="Issue API keys (operator commands).", no_args_is_help=True)
cli.add_typer(workspace_cli, name="workspace")
cli.add_typer(api_key_cli, name="api-key")
analytics_cli = typer.Typer(help="Analytics (operator commands).", no_args_is_help=True)
cli.add_typer(analytics_cli, name="analytics")

log = logging.getLogger("crier")


def main() -> None:
    configure_logs(Settings().log_format)
    cli()


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _where(settings: Settings, urls: DatabaseUrls) -> str:
    if settings.database_url:
        return urls.owner.render_as_string(hide_password=True)
    return f"embedded PostgreSQL in {settings.resolved_data_dir / 'pgdata'}"


async def _open(settings: Settings, urls: DatabaseUrls) -> Runtime:
    """The runtime on `urls`, once its database role is known to be safe."""
    runtime = Runtime.build(settings, urls)
    try:
        await runtime.db.verify_app_role()
    except UnsafeApplicationRole as exc:
        await runtime.close()
        raise _fail(f"refusing to start: {exc}") from None
    return runtime


@cli.command()
def migrate(
    to: Annotated[
        str, typer.Option(help="Target revision: 'head', a revision id, or 'base'.")
    ] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to --to instead.")] = False,
) -> None:
    """Apply the database migrations (as the schema owner)."""
    settings = Settings()
    with database_server(settings) as urls:
        if down:
            migrations.downgrade(urls.owner, to)
        else:
            migrations.upgrade(urls.owner, to)
        typer.echo(
            f"Database at {'revision ' + to if to != 'head' else 'the newest revision'} "
            f"({_where(settings, urls)})."
        )


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [CRIER_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [CRIER_PORT].")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes sharing the port [CRIER_WORKERS]."),
    ] = None,
) -> None:
    """Serve the HTTP API. The schema must be migrated first (`crier migrate`).

    The API keeps no state in the process: run one worker per core (`--workers`), or as many
    servers as you like behind a load balancer.
    """
    settings = _with_address(Settings(), host, port)
    workers = workers or settings.workers
    with database_server(settings) as urls:
        if not migrations.is_current(urls.owner):
            raise _fail("the database schema is not up to date: run `crier migrate` first")
        if workers == 1:
            _serve_until_interrupted(settings, urls, banner=None)
            return
        # Workers are new processes: they find the database through the environment.
        os.environ.update(urls.environment())
        os.environ["CRIER_DATA_DIR"] = str(settings.resolved_data_dir)
        uvicorn.run(
            "crier.asgi:create",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        )


DEMO_ANALYTICS: dict[str, object] = {
    "metrics_schedule": "2m,10m,30m,1h,6h,1d,3d,7d,30d",
    "worker_metrics_poll_seconds": 10,
    "analytics_today_minutes": 1,
}
"""What `crier run` measures by, unless set otherwise."""


def with_demo_analytics(settings: Settings) -> Settings:
    """`settings` for a demo: the sandbox's posts measured within minutes, and today's
    figures aggregated every minute; what the operator set is kept."""
    for name, value in DEMO_ANALYTICS.items():
        if name not in settings.model_fields_set:
            setattr(settings, name, value)
    return settings


@cli.command()
def run(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [CRIER_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [CRIER_PORT].")] = None,
) -> None:
    """Everything on one machine: database, migrations, a demo workspace, the API, the
    scheduler and the sandbox platform.

    This is what `make run` does. Ctrl-C stops it all; the data stays in CRIER_DATA_DIR
    (default ./.crier) for the next run.
    """
    settings = _with_address(Settings(), host, port)
    # Everything runs on this machine: webhook receivers may be too.
    settings.allow_loopback = True
    settings = with_demo_analytics(settings)
    with database_server(settings) as urls:
        migrations.upgrade(urls.owner)
        _serve_until_interrupted(settings, urls, banner=_demo_banner, with_sandbox=True)


def _serve_until_interrupted(
    settings: Settings, urls: DatabaseUrls, banner: object, with_sandbox: bool = False
) -> None:
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal; by then all is
    # done but stopping the database, which the caller's `with` does. That is a clean stop.
    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(_serve(settings, urls, banner, with_sandbox))
    except KeyboardInterrupt:
        typer.echo("Stopped.")


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (it is, with uvicorn[standard]); asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


def _with_address(settings: Settings, host: str | None, port: int | None) -> Settings:
    update: dict[str, object] = {}
    if host is not None:
        update["host"] = host
    if port is not None:
        update["port"] = port
    return settings.model_copy(update=update) if update else settings


async def _demo_banner(db: Database, settings: Settings, urls: DatabaseUrls) -> str:
    from crier.workspace.operator import ensure_demo

    demo = await ensure_demo(db, settings.resolved_data_dir)
    base = settings.base_url
    return "\n".join(
        [
            "",
            "Crier is running.",
            f"  API:        {base}/v1",
            f"  Docs:       {base}/docs",
            f"  Database:   {_where(settings, urls)}",
            f"  Sandbox:    {settings.resolved_sandbox_url} (a local platform; /control to "
            "inject faults)",
            "  Scheduler:  running: due posts are published on time",
            "  Reviews:    each sandbox account is a location with sample reviews, synced "
            "every 15 minutes (GET /v1/reviews; POST /v1/reviews/sync for now)",
            "  Analytics:  sandbox posts are measured minutes after publishing, today's "
            "figures aggregated every minute (GET /v1/analytics/query?metric=impressions"
            "&range=month_to_date; `crier analytics demo` makes 90 days of history)",
            "  Webhooks:   sent, signed; receivers on this machine (loopback) are allowed "
            "in this demo",
            f"  Workspace:  {demo.slug} ({demo.workspace_id})"
            + ("  [created now]" if demo.created else ""),
            f"  API key:    {demo.api_key}",
            "",
            "Try it:",
            f"  curl -H 'Authorization: Bearer {demo.api_key}' {base}/v1/workspace",
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


async def _serve(
    settings: Settings, urls: DatabaseUrls, banner: object, with_sandbox: bool = False
) -> None:
    """The API (and with `with_sandbox`, the sandbox platform and a scheduler worker)."""
    from crier.app import freeze_startup_objects

    runtime = await _open(settings, urls)
    try:
        message = await banner(runtime.db, settings, urls) if callable(banner) else None
        app = runtime.api()
        freeze_startup_objects()
        servers = [_server(app, settings.host, settings.port, settings.shutdown_grace_seconds)]
        stop = asyncio.Event()
        background = []
        if with_sandbox:
            servers.append(_sandbox_server(settings))
            background.append(asyncio.create_task(_work(runtime, stop)))
        try:
            await _run_servers(servers, message)
        finally:
            stop.set()
            await asyncio.gather(*background)
    finally:
        await runtime.close()


async def _work(runtime: Runtime, stop: asyncio.Event) -> None:
    """A scheduler worker and a webhook dispatcher until `stop` is set."""
    scheduler_db = runtime.scheduler_db()
    try:
        await scheduler_db.verify_app_role()
        worker = runtime.worker(scheduler_db)
        dispatcher = runtime.dispatcher(scheduler_db)
        await asyncio.gather(worker.run(stop), dispatcher.run(stop))
    finally:
        await scheduler_db.dispose()


def _server(app: object, host: str, port: int, grace: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=grace,
        )
    )


def _sandbox_server(settings: Settings) -> uvicorn.Server:
    from crier.platforms.sandbox.server import create_sandbox_app
    from crier.platforms.sandbox.store import Store

    store = Store(settings.resolved_data_dir / "sandbox.sqlite3")
    return _server(
        create_sandbox_app(store, sample_reviews=True),
        settings.sandbox_host,
        settings.sandbox_port,
        settings.shutdown_grace_seconds,
    )


async def _run_servers(servers: list[uvicorn.Server], message: str | None) -> None:
    """Run servers together until Ctrl-C; print `message` once all of them listen."""
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    # uvicorn offers no event for "listening"; the banner waits for its flag so that it
    # never advertises an address that failed to bind.
    while not all(s.started for s in servers) and not any(t.done() for t in tasks):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if all(s.started for s in servers) and message:
        typer.echo(message)
    if any(t.done() for t in tasks):  # one could not start: stop the others
        for s in servers:
            s.should_exit = True
    await asyncio.gather(*tasks)
    failed = [s for s in servers if not s.started]
    if failed:
        addresses = ", ".join(f"{s.config.host}:{s.config.port}" for s in failed)
        raise _fail(f"could not listen on {addresses}")


@cli.command()
def worker() -> None:
    """Run the scheduler: queue posts 5 minutes ahead, publish them on time, retry failures.

    Run as many workers, on as many machines, as you like: they share the work through the
    database and take over each other's posts if one dies. Stops cleanly on Ctrl-C or TERM.
    """
    settings = Settings()
    with database_server(settings) as urls:
        if not migrations.is_current(urls.owner):
            raise _fail("the database schema is not up to date: run `crier migrate` first")

        if settings.worker_metrics_port:
            from prometheus_client import start_http_server

            start_http_server(settings.worker_metrics_port, addr=settings.host)
        from crier.app import freeze_startup_objects

        async def main() -> None:
            stop = asyncio.Event()

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            runtime = await _open(settings, urls)
            freeze_startup_objects()  # a full collection then stalls no post falling due
            try:
                await _work(runtime, stop)
            finally:
                await runtime.close()

        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(main())
        typer.echo("Stopped.")


@cli.command()
def sandbox(
    host: Annotated[str | None, typer.Option(help="Interface [CRIER_SANDBOX_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [CRIER_SANDBOX_PORT].")] = None,
) -> None:
    """Run the sandbox platform: a local social network to publish to with no credentials.

    Its control API (`/control`) makes it slow, failing, throttling, hanging or refusing
    content, to see how Crier copes; see docs/sandbox.md. `crier run` starts it too.
    """
    update: dict[str, object] = {}
    if host is not None:
        update["sandbox_host"] = host
    if port is not None:
        update["sandbox_port"] = port
    settings = Settings().model_copy(update=update)
    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(
                _run_servers(
                    [_sandbox_server(settings)],
                    f"Sandbox platform on {settings.resolved_sandbox_url}",
                )
            )
    except KeyboardInterrupt:
        typer.echo("Stopped.")


class EmulatedNetwork(StrEnum):
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    X = "x"
    LINKEDIN = "linkedin"
    GOOGLE_BUSINESS = "google_business"


@cli.command()
def emulator(
    network: Annotated[EmulatedNetwork, typer.Argument(help="The network to emulate.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8002,
) -> None:
    """Run a network's emulator: a local server with the API Crier uses, to walk an OAuth
    connect and publish on your own machine (see docs/platforms.md).

    For Mastodon, run Crier with CRIER_ALLOW_LOOPBACK=true (`crier run` sets it), then
    connect with `instance_url` http://127.0.0.1:8002 and approve on its consent page.
    For Bluesky, make an account with `POST /_emulator/accounts {"handle": "alice.test"}`
    (it answers an app password), then connect with `service_url` http://127.0.0.1:8002.
    For X, it registers an app for this server's callback and prints the settings to run
    Crier with (`CRIER_X_CLIENT_ID` and the rest); connect with `platform` x and approve
    on its consent page. LinkedIn is the same, with `CRIER_LINKEDIN_*`, and Google
    Business Profile with `CRIER_GOOGLE_*` (ada@example.com manages two locations).
    State lives in memory and is gone when it stops.
    """
    from crier.platforms.bluesky import emulator as bluesky
    from crier.platforms.mastodon import emulator as mastodon

    if network in (EmulatedNetwork.X, EmulatedNetwork.LINKEDIN, EmulatedNetwork.GOOGLE_BUSINESS):
        app = _emulator_with_app(network, host, port)
        name = {
            EmulatedNetwork.X: "X",
            EmulatedNetwork.LINKEDIN: "LinkedIn",
            EmulatedNetwork.GOOGLE_BUSINESS: "Google Business Profile",
        }[network]
    else:
        make = {EmulatedNetwork.MASTODON: mastodon, EmulatedNetwork.BLUESKY: bluesky}[network]
        app = make.create_emulator_app()
        name = network.value.title()
    server = _server(app, host, port, 1)
    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(_run_servers([server], f"{name} emulator on http://{host}:{port}"))
    except KeyboardInterrupt:
        typer.echo("Stopped.")


def _emulator_with_app(network: EmulatedNetwork, host: str, port: int) -> Any:
    """The X, LinkedIn or Google emulator, with an app registered for this server's
    callback, and the settings to run Crier with printed."""
    from crier.kit.time import SystemClock
    from crier.platforms.google_business import emulator as google
    from crier.platforms.linkedin import emulator as linkedin
    from crier.platforms.x import emulator as x
    from crier.social_account.connections import redirect_uri

    base = f"http://{host}:{port}"
    callback = redirect_uri(Settings().base_url, network.value)
    if network == EmulatedNetwork.X:
        on_x = x.Network(SystemClock())
        client = on_x.register_client([callback], client_id="crier-emulator")
        app, secret = x.create_emulator_app(on_x), client.client_secret
        urls = {"API_URL": base, "AUTHORIZE_URL": f"{base}/i/oauth2/authorize"}
    elif network == EmulatedNetwork.GOOGLE_BUSINESS:
        on_google = google.Network(SystemClock())
        made = on_google.register_client([callback], client_id="crier-emulator")
        business = on_google.add_account("ada@example.com", "Analytical Engines")
        for title in ("Analytical Engines Soho", "Analytical Engines Camden"):
            place = on_google.add_location(business, title)
            on_google.add_review(place.name, 5, "Wonderful engines, patient staff.", "Charles")
        typer.echo("ada@example.com manages two locations, with a review each.")
        app, secret = google.create_emulator_app(on_google), made.client_secret
        urls = {
            "AUTHORIZE_URL": f"{base}/o/oauth2/v2/auth",
            "OAUTH_URL": base,
            "ACCOUNTS_URL": base,
            "INFORMATION_URL": base,
            "BUSINESS_URL": base,
            "PERFORMANCE_URL": base,
        }
        network_prefix = "CRIER_GOOGLE_"
    else:
        on_linkedin = linkedin.Network(SystemClock())
        found = on_linkedin.register_client([callback], client_id="crier-emulator")
        ada = on_linkedin.member_named("Ada Lovelace")  # the consent page's default member
        on_linkedin.add_organization(
            "Analytical Engines", "analytical-engines", {ada.id: "ADMINISTRATOR"}
        )
        typer.echo('Ada Lovelace administers the page "analytical-engines".')
        app, secret = linkedin.create_emulator_app(on_linkedin), found.client_secret
        urls = {"API_URL": base, "OAUTH_URL": f"{base}/oauth/v2"}
    prefix = f"CRIER_{network.value.upper()}_"
    if network == EmulatedNetwork.GOOGLE_BUSINESS:
        prefix = network_prefix
    lines = ["CLIENT_ID=crier-emulator", f"CLIENT_SECRET={secret}"]
    lines += [f"{k}={v}" for k, v in urls.items()]
    typer.echo("Run Crier with:\n" + "".join(f"  {prefix}{line}\n" for line in lines), nl=False)
    typer.echo(f"(the app's redirect URI is {callback})")
    return app


@workspace_cli.command("create")
def workspace_create(
    name: Annotated[str, typer.Option(help="Display name of the workspace.")],
    timezone: Annotated[str, typer.Option(help="IANA timezone, e.g. Europe/Paris.")] = "UTC",
    plan: Annotated[str, typer.Option(help="Plan: free, pro or agency.")] = "free",
    slug: Annotated[
        str | None, typer.Option(help="Unique slug; derived from the name if omitted.")
    ] = None,
    owner_email: Annotated[str | None, typer.Option(help="Email of the first owner.")] = None,
    owner_name: Annotated[str, typer.Option(help="Name of the first owner.")] = "Owner",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Create a workspace with its first owner, and print the owner's API key (shown once)."""
    from crier.workspace.service import create_workspace

    async def create(db: Database) -> dict[str, object]:
        async with db.transaction() as session:
            new = await create_workspace(
                session,
                name=name,
                timezone=timezone,
                plan=plan,
                slug=slug,
                owner_email=owner_email,
                owner_name=owner_name,
            )
        return {
            "workspace": {
                "id": str(new.workspace.id),
                "slug": new.workspace.slug,
                "name": new.workspace.name,
                "plan": new.workspace.plan,
                "timezone": new.workspace.timezone,
            },
            "owner": {"member_id": str(new.owner.id)},
            "api_key": {"id": str(new.api_key.id), "key": new.api_key_secret},
        }

    result = _run_with_db(create)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    ws, key = result["workspace"], result["api_key"]
    assert isinstance(ws, dict)
    assert isinstance(key, dict)
    typer.echo(
        f"Workspace {ws['slug']} created.\n  id:       {ws['id']}\n"
        f"  timezone: {ws['timezone']}\n  plan:     {ws['plan']}\n"
        f"  API key:  {key['key']}\n(The key is shown once; Crier keeps only its hash.)"
    )


@api_key_cli.command("create")
def api_key_create(
    workspace: Annotated[str, typer.Option(help="Workspace id or slug.")],
    member: Annotated[
        str | None, typer.Option(help="Member id or email; default: an owner.")
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "created by crier api-key",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Limit the key to this permission (repeatable); default: all of the member's."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Issue an API key for a member of a workspace, and print it (shown once)."""
    from crier.workspace.operator import create_key_for

    try:
        scopes = [Permission(s) for s in scope] if scope else None
    except ValueError as exc:
        raise _fail(f"{exc}; permissions are: {', '.join(p.value for p in Permission)}") from None

    async def create(db: Database) -> dict[str, object]:
        ws, mem, key, secret = await create_key_for(db, workspace, member, name, scopes)
        return {
            "workspace_id": str(ws.id),
            "member_id": str(mem.id),
            "id": str(key.id),
            "key": secret,
        }

    result = _run_with_db(create)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{result['key']}\n(The key is shown once; Crier keeps only its hash.)")


@analytics_cli.command("rebuild")
def analytics_rebuild(
    workspace: Annotated[str, typer.Option(help="Workspace id or slug.")],
    first: Annotated[
        datetime,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            help="The first day (YYYY-MM-DD, in the workspace timezone).",
        ),
    ],
    last: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="The last day, included.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Aggregate a workspace's observations into its daily snapshots again, for the days
    given (idempotent: run it as often as you like, as after the workspace changed its
    timezone)."""
    from crier.analytics.rollups import rebuild
    from crier.kit.time import SystemClock
    from crier.workspace.operator import find_workspace

    if first > last:
        raise _fail("--from must not be after --to")

    async def run(db: Database) -> dict[str, object]:
        async with db.transaction() as session:
            found = await find_workspace(session, workspace)
        done = await rebuild(db, found.id, first.date(), last.date(), SystemClock().now())
        return {
            "workspace_id": str(found.id),
            "timezone": found.timezone,
            "from": first.date().isoformat(),
            "to": last.date().isoformat(),
            **done._asdict(),
        }

    result = _run_with_db(run)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"Rebuilt {result['from']} to {result['to']} ({result['timezone']} days): "
        f"{result['made']} snapshots, {result['written']} new or changed, "
        f"{result['removed']} removed."
    )


@analytics_cli.command("demo")
def analytics_demo(
    workspace: Annotated[
        str | None,
        typer.Option(help="Workspace id or slug; the demo workspace of `make run` without it."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=730, help="Days of history to make.")] = 90,
) -> None:
    """Give a workspace's accounts days of made-up history (posts measured on the usual
    schedule, followers day by day) and two saved views, and aggregate its days, so that
    views, best times and reports can be looked at at once. Each run adds to what is there."""
    from crier.analytics.demo import backfill
    from crier.kit.time import SystemClock
    from crier.workspace.operator import DEMO_FILE, find_workspace

    ref = workspace
    if ref is None:
        saved = Settings().resolved_data_dir / DEMO_FILE
        if not saved.exists():
            raise _fail("no demo workspace here yet (run `make run` once) or give --workspace")
        ref = json.loads(saved.read_text())["workspace_id"]

    async def run(db: Database) -> dict[str, object]:
        async with db.transaction() as session:
            found = await find_workspace(session, str(ref))
        done = await backfill(db, found.id, days, SystemClock().now())
        return {"workspace_id": str(found.id), "slug": found.slug, **done.__dict__}

    result = _run_with_db(run)
    typer.echo(
        f"{result['slug']}: {result['posts']} posts on {result['accounts']} accounts, "
        f"{result['observations']} observations, {result['snapshots']} daily snapshots "
        f"from {result['first_day']} to {result['last_day']}; saved views: "
        "GET /v1/analytics/views"
    )


@cli.command()
def dbshell(
    owner: Annotated[bool, typer.Option("--owner", help="Connect as the schema owner.")] = False,
) -> None:
    """Open psql on Crier's database, as the application role (RLS in force) by default."""
    settings = Settings()
    with database_server(settings) as urls:
        url: URL = urls.owner if owner else urls.app
        psql = _psql_binary()
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        env = dict(os.environ)
        if not owner:
            env["PGOPTIONS"] = "-c role=crier_app"
        import subprocess

        code = subprocess.call([psql, conninfo], env=env)  # noqa: S603 - our own binary
    raise typer.Exit(code)


def _psql_binary() -> str:
    import shutil

    from crier.kit.db.embedded import EmbeddedPostgres

    bundled = EmbeddedPostgres.binary("psql")
    if bundled.exists():
        return str(bundled)
    found = shutil.which("psql")
    if found is None:
        raise _fail("psql is not installed")
    return found


def _run_with_db(work: object) -> dict[str, object]:
    settings = Settings()
    with database_server(settings) as urls:
        if not migrations.is_current(urls.owner):
            raise _fail("the database schema is not up to date: run `crier migrate` first")

        async def go() -> dict[str, object]:
            runtime = await _open(settings, urls)
            try:
                assert callable(work)
                result: dict[str, object] = await work(runtime.db)
                return result
            finally:
                await runtime.close()

        try:
            return asyncio.run(go())
        except CrierError as exc:
            raise _fail(exc.detail) from None


if __name__ == "__main__":  # pragma: no cover
    main()
