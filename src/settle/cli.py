"""``settle serve | migrate | projects create | projects list | webhooks set-url | webhooks
deliver | webhooks redeliver``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

from settle import validation
from settle.config import Settings
from settle.db.database import connect
from settle.db.migrate import upgrade
from settle.errors import SettleError
from settle.events import service as events
from settle.events.service import EndpointChanges, WebhookEndpoint
from settle.projects import service as projects
from settle.projects.models import Dialect, IssuedKeys, Scope


def _credentials(issued: IssuedKeys) -> dict[str, object]:
    return {
        "project_id": issued.project.id,
        "name": issued.project.name,
        "sandbox": issued.sandbox,
        "processout": {
            "username": issued.processout_username,
            "password": issued.processout_password,
        },
        "reepay": {"private_key": issued.reepay_private_key},
    }


async def _create_project(url: str, name: str, *, sandbox: bool) -> IssuedKeys:
    db = await connect(url)
    try:
        async with db.write() as tx:
            return await projects.create_project(tx, name, sandbox=sandbox)
    finally:
        await db.close()


async def _list_projects(url: str) -> list[dict[str, object]]:
    db = await connect(url)
    try:
        async with db.read() as tx:
            return [{"project_id": p.id, "name": p.name} for p in await projects.list_projects(tx)]
    finally:
        await db.close()


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        database_url=args.database_url,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    upgrade(settings.database_url)
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_projects_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    upgrade(settings.database_url)
    issued = asyncio.run(_create_project(settings.database_url, args.name, sandbox=not args.live))
    creds = _credentials(issued)
    if args.json:
        print(json.dumps(creds))
    else:
        print(f"project {issued.project.id} ({'sandbox' if issued.sandbox else 'live'})")
        print(
            f"  ProcessOut: user {issued.processout_username}  password "
            f"{issued.processout_password}"
        )
        print(f"  Reepay:     private key {issued.reepay_private_key}")
        print("  Keep these secrets: they are stored hashed and will not be shown again.")
    return 0


def cmd_projects_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    upgrade(settings.database_url)
    for project in asyncio.run(_list_projects(settings.database_url)):
        print(json.dumps(project))
    return 0


async def _set_webhook_urls(
    url: str, scope: Scope, dialect: Dialect, changes: EndpointChanges
) -> WebhookEndpoint:
    db = await connect(url)
    try:
        async with db.write() as tx:
            await projects.get_project(tx, scope.project_id)
            return await events.put_endpoint(tx, scope, dialect, changes)
    finally:
        await db.close()


def cmd_webhooks_set_url(args: argparse.Namespace) -> int:
    """The project's webhook URLs for one dialect and mode: the ProcessOut API has no endpoint
    for them (ProcessOut sets them in its dashboard), so this is how they are set for it."""
    settings = _settings(args)
    upgrade(settings.database_url)
    # The ProcessOut user name of a sandbox project ("test-proj_...") names project and mode.
    project_id = args.project.removeprefix("test-")
    if args.live and project_id != args.project:
        print("error: a 'test-' user name names the sandbox mode, not --live", file=sys.stderr)
        return 2
    scope = Scope(project_id=project_id, sandbox=not args.live)
    try:
        urls = [validation.url(u, f"url {i + 1}") for i, u in enumerate(args.urls)]
        changes = EndpointChanges(
            urls=list(dict.fromkeys(urls)),
            disabled=True if args.disable else False if args.enable else None,
            secret=args.secret,
        )
        endpoint = asyncio.run(
            _set_webhook_urls(settings.database_url, scope, args.dialect, changes)
        )
    except SettleError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "project_id": endpoint.project_id,
                "sandbox": endpoint.sandbox,
                "dialect": endpoint.dialect,
                "urls": endpoint.urls,
                "disabled": endpoint.disabled,
                "secret": endpoint.secret,
            }
        )
    )
    return 0


async def _deliver_until_stopped(settings: Settings) -> None:
    from settle.api.faces import webhook_faces
    from settle.events.worker import DeliveryWorker

    db = await connect(settings.database_url)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await DeliveryWorker(db, settings, webhook_faces()).run()
    except asyncio.CancelledError:
        pass  # stopped: attempts under way were given their moment to be recorded
    finally:
        await db.close()


def cmd_webhooks_deliver(args: argparse.Namespace) -> int:
    """A delivery worker on its own, until SIGTERM or SIGINT (any number of them, beside
    ``settle serve`` or instead of its loops: SETTLE_WEBHOOKS_DELIVER=0 there)."""
    settings = _settings(args)
    upgrade(settings.database_url)
    print(
        f"Delivering webhooks from {settings.database_url.split(':', 1)[0]}",
        file=sys.stderr,
    )
    asyncio.run(_deliver_until_stopped(settings))
    return 0


async def _redeliver(settings: Settings, event_id: str) -> int | None:
    from settle.api.faces import webhook_faces
    from settle.clock import now_us
    from settle.events import deliveries
    from settle.events.worker import backoff_of

    db = await connect(settings.database_url)
    try:
        async with db.write() as tx:
            row = await tx.fetchrow(
                "SELECT project_id, sandbox FROM events WHERE id = $1", event_id
            )
            if row is None:
                return None
            return await deliveries.redeliver(
                tx,
                Scope(project_id=row["project_id"], sandbox=bool(row["sandbox"])),
                event_id,
                webhook_faces(),
                now_us=now_us(),
                window_us=backoff_of(settings).window_us,
            )
    finally:
        await db.close()


def cmd_webhooks_redeliver(args: argparse.Namespace) -> int:
    """Send an event again to every URL it goes to (the running workers pick it up)."""
    settings = _settings(args)
    upgrade(settings.database_url)
    count = asyncio.run(_redeliver(settings, args.event_id))
    if count is None:
        print(f"error: no event {args.event_id!r}", file=sys.stderr)
        return 1
    print(json.dumps({"event_id": args.event_id, "deliveries": count}))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    upgrade(settings.database_url)
    existing = asyncio.run(_list_projects(settings.database_url))
    if not existing:
        issued = asyncio.run(
            _create_project(settings.database_url, "Default sandbox", sandbox=True)
        )
        creds = _credentials(issued)
        print(
            "Created a sandbox project. Its credentials (shown once, stored hashed):",
            file=sys.stderr,
        )
        print(json.dumps(creds, indent=2), file=sys.stderr)
    # Workers are separate processes: they read their settings from the environment.
    os.environ["SETTLE_DATABASE_URL"] = settings.database_url
    os.environ["SETTLE_HOST"] = settings.host
    os.environ["SETTLE_PORT"] = str(settings.port)
    print(
        f"Settle listening on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker(s), {settings.database_url.split(':', 1)[0]})",
        file=sys.stderr,
    )
    uvicorn.run(
        "settle.asgi:app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=args.access_log,
        log_level="info",
        backlog=2048,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="settle", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def db_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            help="sqlite:///PATH (default sqlite:///settle.db) "
            "or postgresql://...; also SETTLE_DATABASE_URL",
        )

    serve = sub.add_parser("serve", help="apply migrations and serve the API")
    db_flag(serve)
    serve.add_argument("--host", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, help="default 8080")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    db_flag(migrate)
    migrate.set_defaults(func=cmd_migrate)

    proj = sub.add_parser("projects", help="manage projects and their API keys")
    proj_sub = proj.add_subparsers(dest="projects_command", required=True)
    create = proj_sub.add_parser("create", help="create a project and print its credentials")
    db_flag(create)
    create.add_argument("--name", required=True)
    create.add_argument("--live", action="store_true", help="live keys instead of sandbox")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=cmd_projects_create)
    listing = proj_sub.add_parser("list", help="list projects (no secrets)")
    db_flag(listing)
    listing.set_defaults(func=cmd_projects_list)

    hooks = sub.add_parser("webhooks", help="where a project's events are sent")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    set_url = hooks_sub.add_parser(
        "set-url",
        help="set a project's webhook URLs (replacing the list; none clears it) and print "
        "them with the signing secret",
    )
    db_flag(set_url)
    set_url.add_argument(
        "--project", required=True, help="the project id (proj_...) or ProcessOut user name"
    )
    set_url.add_argument("--live", action="store_true", help="the live mode (default sandbox)")
    set_url.add_argument(
        "--dialect",
        choices=["processout", "reepay"],
        default="processout",
        help="whose deliveries (default processout; Reepay's are also set by PUT "
        "/v1/account/webhook_settings)",
    )
    set_url.add_argument("--secret", help="the signing secret (default: kept, or a new one)")
    enabled = set_url.add_mutually_exclusive_group()
    enabled.add_argument("--disable", action="store_true", help="stop sending")
    enabled.add_argument("--enable", action="store_true", help="send again")
    set_url.add_argument("urls", nargs="*", metavar="URL", help="http(s) URLs")
    set_url.set_defaults(func=cmd_webhooks_set_url)
    deliver = hooks_sub.add_parser(
        "deliver", help="run a webhook delivery worker (until SIGTERM or Ctrl-C)"
    )
    db_flag(deliver)
    deliver.set_defaults(func=cmd_webhooks_deliver)
    redeliver = hooks_sub.add_parser(
        "redeliver", help="send an event again to every URL it goes to"
    )
    db_flag(redeliver)
    redeliver.add_argument("event_id", metavar="EVENT_ID", help="ev_...")
    redeliver.set_defaults(func=cmd_webhooks_redeliver)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
