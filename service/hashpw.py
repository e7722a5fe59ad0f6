"""``python -m service.hashpw``: make a password hash for ``GOLDSTRESS_SERVICE_USERS`` or a new
API key with its SHA-256 for ``GOLDSTRESS_SERVICE_API_KEYS``.

    python -m service.hashpw                      # asks for the password twice (not echoed)
    printf '%s\\n' "$PW" | python -m service.hashpw --stdin
    python -m service.hashpw --api-key            # prints "api key: ..." and "sha256: ..."

The hash is PBKDF2-HMAC-SHA256 (RFC 8018) with a random 16-byte salt, written as
``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>``; default 600,000 iterations (OWASP
Password Storage Cheat Sheet, 2023). Nothing secret is logged; the password is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from service.auth import DEFAULT_ITERATIONS, MAX_ITERATIONS, api_key_hash, hash_password


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input or passwords that differ)."""
    p = argparse.ArgumentParser(
        prog="python -m service.hashpw", description="Hash a service password or make an API key."
    )
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of standard input")
    p.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS, help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS:,})"
    )
    p.add_argument("--api-key", action="store_true", help="generate a random API key and print it with its sha256")
    args = p.parse_args(argv)
    if args.api_key:
        key = secrets.token_urlsafe(32)
        print(f"api key: {key}\nsha256: {api_key_hash(key)}")
        return 0
    if not 1 <= args.iterations <= MAX_ITERATIONS:
        print(f"hashpw: --iterations must be in 1..{MAX_ITERATIONS}", file=sys.stderr)
        return 2
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("hashpw: the passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("hashpw: empty password", file=sys.stderr)
        return 2
    print(hash_password(password, iterations=args.iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
