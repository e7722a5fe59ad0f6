"""Authentication and roles for the stakeholder service.

User passwords (checked against PBKDF2-HMAC-SHA256 hashes, answered with signed JWTs) and API keys
(SHA-256 digests) give a role (``viewer`` < ``analyst``); :func:`check_service_config` refuses unsafe
settings before the service starts.
Credentials, secrets and development mode: docs/platform/service.md.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import jwt

from goldstress.settings import PASSWORD_HASH_RE, Settings

ROLE_RANK: dict[str, int] = {"viewer": 1, "analyst": 2}
"""Role order: a role grants every role of lower or equal rank."""

COOKIE_NAME = "goldstress_session"
"""Name of the HttpOnly, SameSite=Strict session cookie holding the JWT."""

API_KEY_HEADER = "x-api-key"
"""Header carrying an API key (HTTP header names are case-insensitive)."""

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "goldstress"

DEFAULT_ITERATIONS = 600_000
"""PBKDF2-HMAC-SHA256 iterations for new hashes (OWASP Password Storage Cheat Sheet, 2023)."""

MAX_ITERATIONS = 10_000_000
"""Largest iteration count accepted in a configured hash (bounds the cost of one login)."""

DEV_USERS: dict[str, str] = {"dev-viewer": "viewer", "dev-analyst": "analyst"}
DEV_PASSWORD = "dev"
_DEV_ITERATIONS = 1_000  # the dev password is public: slow hashing would protect nothing

_MAX_CREDENTIAL_CHARS = 4096
_MAX_CACHED_TOKENS = 10_000
_CLOCK_SKEW_S = 60  # tolerated difference between the issuer's clock and ours


class ServiceConfigError(RuntimeError):
    """The service settings do not allow a safe start; the message says which variable to set."""


@dataclass(frozen=True)
class Principal:
    """An authenticated client.

    Attributes
    ----------
    subject : str
        User name, or ``apikey:<first 12 hex digits of the key hash>``.
    role : str
        ``viewer`` or ``analyst``.
    method : str
        ``password`` (JWT from a login) or ``api_key``.
    rate_key : str
        Identity used for rate limiting (``user:<name>`` or ``key:<hash>``).
    """

    subject: str
    role: str
    method: str
    rate_key: str

    def has_role(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or above. ValueError for an unknown role."""
        if role not in ROLE_RANK:
            raise ValueError(f"role: expected one of {sorted(ROLE_RANK)}, got {role!r}")
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """PBKDF2-HMAC-SHA256 hash of ``password`` as ``pbkdf2_sha256$<iterations>$<salt hex>$<hex>``.

    RFC 8018 section 5.2 (PBKDF2) with HMAC-SHA256 via ``hashlib.pbkdf2_hmac``; the salt is 16
    random bytes unless given. Raises ValueError for an empty password, iterations outside
    ``1..MAX_ITERATIONS`` or a salt shorter than 8 bytes.
    """
    if not isinstance(password, str) or not password:
        raise ValueError("password: must be a non-empty string")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations: expected an integer in 1..{MAX_ITERATIONS}, got {iterations!r}")
    salt = secrets.token_bytes(16) if salt is None else salt
    if len(salt) < 8:
        raise ValueError("salt: at least 8 bytes")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time compare).

    Returns False (never raises) for a malformed hash or an iteration count above
    ``MAX_ITERATIONS``.
    """
    m = PASSWORD_HASH_RE.match(encoded or "")
    if not m or not isinstance(password, str):
        return False
    iterations = int(m.group(1))
    if iterations > MAX_ITERATIONS:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(m.group(2)), iterations)
    return hmac.compare_digest(digest.hex(), m.group(3))


def api_key_hash(key: str) -> str:
    """SHA-256 hex digest of an API key: the form stored in ``GOLDSTRESS_SERVICE_API_KEYS``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``).

    ``0.0.0.0``/``::`` (all interfaces) and any other name are not loopback.
    """
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_service_config(settings: Settings) -> None:
    """Refuse unsafe settings before the service starts.

    Raises :class:`ServiceConfigError` (message names the variable, never a secret value) when
    dev mode is on but ``service_host`` is not loopback, or, outside dev mode, when
    ``service_jwt_secret`` is unset or no user and no API key is configured.
    """
    if settings.service.dev_mode:
        if not is_loopback(settings.service.host):
            raise ServiceConfigError(
                f"GOLDSTRESS_SERVICE_DEV_MODE=true is refused because GOLDSTRESS_SERVICE_HOST={settings.service.host!r} "
                "is not a loopback address: development mode has public dev passwords. Bind to 127.0.0.1 "
                "or configure real secrets (GOLDSTRESS_SERVICE_JWT_SECRET, GOLDSTRESS_SERVICE_USERS / _API_KEYS)."
            )
        return
    if settings.service.jwt_secret is None:
        raise ServiceConfigError(
            "refusing to start: GOLDSTRESS_SERVICE_JWT_SECRET is not set (>= 32 random characters). "
            "Set it and GOLDSTRESS_SERVICE_USERS and/or GOLDSTRESS_SERVICE_API_KEYS (see "
            "docs/platform/service.md), or GOLDSTRESS_SERVICE_DEV_MODE=true for local development only."
        )
    if not settings.service.users and not settings.service.api_keys:
        raise ServiceConfigError(
            "refusing to start: no credentials configured. Set GOLDSTRESS_SERVICE_USERS (hashes from "
            "`python -m service.hashpw`) and/or GOLDSTRESS_SERVICE_API_KEYS (sha256 hex of each key)."
        )


class Authenticator:
    """Checks passwords, issues and verifies JWTs, looks up API keys.

    Parameters
    ----------
    settings : Settings
        Checked with :func:`check_service_config` first (so construction raises
        :class:`ServiceConfigError` on unsafe settings).
    """

    def __init__(self, settings: Settings) -> None:
        check_service_config(settings)
        self.dev_mode = settings.service.dev_mode
        if settings.service.jwt_secret is not None:
            self._secret = settings.service.jwt_secret.get_secret_value().encode("utf-8")
        else:  # dev mode: a fresh secret per start, so dev tokens never outlive the process
            self._secret = secrets.token_bytes(48)
        self.ttl_s = int(settings.service.token_ttl_s)
        self.max_lifetime_s = int(settings.service.token_max_lifetime_s)
        self._users: dict[str, tuple[str, str]] = {
            name: (u.password_hash.get_secret_value(), u.role) for name, u in settings.service.users.items()
        }
        if self.dev_mode:
            for name, role in DEV_USERS.items():
                self._users.setdefault(name, (hash_password(DEV_PASSWORD, _DEV_ITERATIONS), role))
        self._api_keys = dict(settings.service.api_keys)
        some = next(iter(self._users.values()), None)
        iters = int(PASSWORD_HASH_RE.match(some[0]).group(1)) if some else DEFAULT_ITERATIONS
        # verified for unknown user names so that a miss costs as much as a wrong password
        self._dummy_hash = hash_password(secrets.token_urlsafe(12), min(iters, MAX_ITERATIONS))
        self._api_key_lookup = lru_cache(maxsize=4096)(self._lookup_api_key)
        self._verified: dict[str, tuple[Principal, float]] = {}  # JWT -> (principal, exp): skips re-verifying

    # ------------------------------------------------------------------ passwords and JWTs
    def login(self, username: str, password: str) -> Principal | None:
        """The principal for a correct user name and password, else None (CPU-bound: PBKDF2)."""
        entry = self._users.get(username) if isinstance(username, str) else None
        if entry is None:
            verify_password(str(password), self._dummy_hash)
            return None
        if not verify_password(password, entry[0]):
            return None
        return Principal(subject=username, role=entry[1], method="password", rate_key=f"user:{username}")

    def issue_token(self, principal: Principal, now: float | None = None) -> tuple[str, int]:
        """A signed HS256 JWT for ``principal`` and its lifetime in seconds (``service.token_ttl_s``,
        which the settings keep within ``service.token_max_lifetime_s``)."""
        iat = int(time.time() if now is None else now)
        claims = {
            "sub": principal.subject,
            "role": principal.role,
            "iat": iat,
            "exp": iat + self.ttl_s,
            "iss": JWT_ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM), self.ttl_s

    def verify_token(self, token: str) -> Principal | None:
        """The principal of a valid JWT, else None.

        Valid means: HS256 signature with this service's secret, ``exp`` in the future, ``iat``
        not in the future (60 s clock skew allowed), ``exp - iat`` at most
        ``service.token_max_lifetime_s`` (a long-lived token is refused even when correctly
        signed), issuer ``goldstress``, and a subject that is a configured user; the role is the user's
        configured role, not the token's claim. Verified tokens are cached (at most 10,000)
        until their ``exp``, so a busy client costs one dictionary lookup per request; users
        come from the settings, fixed for the life of the process.
        """
        if not token or len(token) > _MAX_CREDENTIAL_CHARS:
            return None
        cached = self._verified.get(token)
        if cached is not None:  # signature already checked; only the expiry can change
            principal, exp = cached
            if time.time() < exp:
                return principal
            self._verified.pop(token, None)
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                options={"require": ["exp", "iat", "sub", "role", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (iat, exp)):
            return None
        if exp - iat > self.max_lifetime_s or iat > time.time() + _CLOCK_SKEW_S:
            return None
        entry = self._users.get(claims.get("sub"))
        if entry is None:
            return None
        principal = Principal(subject=claims["sub"], role=entry[1], method="password", rate_key=f"user:{claims['sub']}")
        if len(self._verified) >= _MAX_CACHED_TOKENS:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]))
        return principal

    # ------------------------------------------------------------------ API keys
    def _lookup_api_key(self, key: str) -> Principal | None:
        digest = api_key_hash(key)
        role = self._api_keys.get(digest)
        if role is None:
            return None
        return Principal(subject=f"apikey:{digest[:12]}", role=role, method="api_key", rate_key=f"key:{digest}")

    def verify_api_key(self, key: str) -> Principal | None:
        """The principal of a configured API key, else None (lookups are cached)."""
        if not key or len(key) > _MAX_CREDENTIAL_CHARS:
            return None
        return self._api_key_lookup(key)

    # ------------------------------------------------------------------ requests
    def authenticate(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> tuple[Principal | None, bool]:
        """Authenticate a request from its headers (lower-case names) and cookies.

        Credentials are tried in the order ``X-API-Key``, ``Authorization: Bearer``, session
        cookie; the first valid one gives the principal. Returns ``(principal, presented)``:
        ``presented`` says whether any credential was sent, so a caller can tell "no
        credentials" (``(None, False)``) from "bad or expired credentials" (``(None, True)``).
        """
        presented = False
        key = headers.get(API_KEY_HEADER)
        if key is not None:
            presented = True
            p = self.verify_api_key(key)
            if p is not None:
                return p, True
        auth = headers.get("authorization")
        if auth is not None:
            presented = True
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer":
                p = self.verify_token(token.strip())
                if p is not None:
                    return p, True
        cookie = cookies.get(COOKIE_NAME)
        if cookie:
            presented = True
            p = self.verify_token(cookie)
            if p is not None:
                return p, True
        return None, presented
