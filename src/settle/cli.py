"""``settle serve | migrate | projects create | projects list``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from settle.config import Settings
from settle.db.database import connect
from settle.db.migrate import upgrade
from settle.projects import service as projects
from settle.projects.models import IssuedKeys


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
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
