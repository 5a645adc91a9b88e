"""Dashboard logins: the operator (or viewer) token once, then a signed session cookie.

The cookie is signed with a key derived from the operator token, so every instance behind a
load balancer reads the others' cookies, and changing a token ends the sessions made with it.
Each form carries a CSRF token derived from the session. Without Api:OperatorToken the
dashboard is open (local development): every browser gets an operator session of its own.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.core.config import ApiSection
from app.operations.actor import Actor, Role

COOKIE = "aevatar_session"


@dataclass(frozen=True)
class Session:
    sid: str
    role: Role
    name: str

    def actor(self, client: str | None) -> Actor:
        return Actor(who=self.name, role=self.role, client=client)


class Sessions:
    def __init__(self, api: ApiSection) -> None:
        self._tokens: dict[Role, str] = {}
        if api.operator_token:
            self._tokens["operator"] = api.operator_token
            if api.viewer_token:
                self._tokens["viewer"] = api.viewer_token
        self.open = not self._tokens
        seed = api.operator_token or secrets.token_hex(32)
        self._key = hashlib.sha256(b"aevatar-dashboard-session|" + seed.encode()).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="dashboard-session")
        self.max_age_seconds = int(api.session_hours * 3600)

    def role_of_token(self, token: str) -> Role | None:
        for role, expected in self._tokens.items():
            if secrets.compare_digest(token.encode(), expected.encode()):
                return role
        return None

    def issue(self, *, role: Role, name: str) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(sid=secrets.token_urlsafe(16), role=role, name=name)
        value = self._signer.dumps(
            {"sid": session.sid, "role": role, "name": name, "tv": self._token_version(role)}
        )
        return session, value

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=self.max_age_seconds)
        except BadSignature:
            return None
        role = data.get("role")
        if role not in ("operator", "viewer") or data.get("tv") != self._token_version(role):
            return None
        return Session(sid=str(data["sid"]), role=role, name=str(data.get("name") or role))

    def csrf_of(self, session: Session) -> str:
        return hmac.new(self._key, f"csrf|{session.sid}".encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session: Session, given: str) -> bool:
        return secrets.compare_digest(self.csrf_of(session).encode(), given.encode())

    def _token_version(self, role: str) -> str:
        """Changes when the role's token changes, which ends that role's sessions."""
        token = self._tokens.get(role, "open")  # type: ignore[call-overload]
        return hashlib.sha256(f"{role}|{token}".encode()).hexdigest()[:12]
