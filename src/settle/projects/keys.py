"""API key material: generation, hashing, and the ProcessOut username of a scope."""

from __future__ import annotations

import hashlib

from settle.ids import random_token

SECRET_LENGTH = 40


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_processout_secret(sandbox: bool) -> str:
    return ("key_sandbox_" if sandbox else "key_live_") + random_token(SECRET_LENGTH)


def new_reepay_secret() -> str:
    return "priv_" + random_token(SECRET_LENGTH)


def processout_username(project_id: str, sandbox: bool) -> str:
    """ProcessOut marks sandbox credentials by a ``test-`` prefix on the project id."""
    return ("test-" if sandbox else "") + project_id


def hint(secret: str) -> str:
    """What may be shown of a key later (dashboards, logs): its prefix and last 4 characters."""
    prefix = secret.rsplit("_", 1)[0] + "_"
    return f"{prefix}...{secret[-4:]}"
