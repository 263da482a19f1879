"""The original FastAPI single-session service, on sessionwatch's core.

    python examples/fastapi_service.py --url redis://127.0.0.1:21084/0

(needs ``pip install sessionwatch[asgi]``, which brings FastAPI and uvicorn.)

- ``POST /login`` ``{"username": ..., "app": ..., "type": "web|mobile|api"}`` logs in and
  ends any previous session of that user (single-session mode: ``end_reason=replaced``);
  returns the token (send it back as ``Authorization: Bearer <token>``) and sets it as an
  HttpOnly cookie too.
- ``GET /session`` returns the session (401 if not logged in).
- ``POST /logout`` ends it.

Try it: ``curl -s -XPOST localhost:PORT/login -H 'content-type: application/json'
-d '{"username":"alice"}'`` then ``curl -s localhost:PORT/session -H "Authorization:
Bearer <token>"``; log in again and the first token gets 401.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel

from core import DEFAULT_URL, AsyncSessionStore, InvalidInput, Policy, Session, redact_url
from core.embedded import free_port
from core.integrations.asgi import SessionHandle, SessionWatchMiddleware, require_session, session_handle

Handle = Annotated[SessionHandle, Depends(session_handle)]
CurrentSession = Annotated[Session, Depends(require_session)]


class LoginRequest(BaseModel):
    username: str
    app: str = "api-service"
    type: Literal["web", "mobile", "api"] = "api"


def public(session: Session) -> dict[str, Any]:
    """What the service shows about a session: the short id, never the full id or token."""
    data = session.to_dict()
    data["sid"] = session.short_id
    return data


def create_app(store: AsyncSessionStore, *, secure: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await store.close()

    app = FastAPI(title="sessionwatch single-session service", lifespan=lifespan)
    app.add_middleware(SessionWatchMiddleware, store=store, app_name="api-service", secure=secure)

    @app.post("/login")
    async def login(body: LoginRequest, handle: Handle) -> dict[str, Any]:
        try:
            session, token = await handle.login(body.username, app=body.app, type=body.type)
        except InvalidInput as exc:
            raise HTTPException(422, str(exc)) from None
        return {"token": token, "session": public(session)}

    @app.get("/session")
    async def read_session(session: CurrentSession) -> dict[str, Any]:
        return public(session)

    @app.post("/logout")
    async def logout(handle: Handle) -> dict[str, bool]:
        return {"ended": await handle.logout()}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="Redis URL (default %(default)s)")
    parser.add_argument("--prefix", default="", help="key prefix shared with the dashboard")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--secure", action="store_true", help="mark the cookie Secure (needs HTTPS)")
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("error: uvicorn is not installed: pip install 'sessionwatch[asgi]'", file=sys.stderr)
        return 1
    store = AsyncSessionStore.from_url(args.url, prefix=args.prefix, policy=Policy(max_sessions_per_user=1))
    port = args.port or free_port()
    print(f"single-session service on http://127.0.0.1:{port}/ (sessions in {redact_url(args.url)})")
    uvicorn.run(create_app(store, secure=args.secure), host="127.0.0.1", port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
