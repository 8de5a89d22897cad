"""The authorization server's HTTP surface: discovery, registration, authorize, consent, tokens."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app import audit
from app.auth.deps import CurrentBrowserSession, OptionalBrowserSession, sign_in_url
from app.config import Settings
from app.connectors import service as connectors
from app.db import SessionDep
from app.errors import AppError, NotFoundError
from app.kit.ratelimit import RateLimits
from app.kit.security import sign_blob, unsign_blob
from app.kit.web import PAGE_CSP, CsrfProtected, SettingsDep, client_ip, render
from app.oauth import service
from app.oauth.deps import FetcherDep, SigningKeysDep
from app.oauth.errors import (
    NO_STORE,
    AccessDenied,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    TooManyRequests,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
)
from app.oauth.metadata import authorization_server_metadata
from app.oauth.models import OAuthClient
from app.oauth.pkce import challenge_is_well_formed
from app.oauth.redirect_uris import (
    csp_source,
    find_registered,
    is_native_redirect,
    redirect_uri_problem,
)
from app.oauth.registration import register_client, registration_response
from app.oauth.scopes import BASE_SCOPE, DESCRIPTIONS, WRITE_SCOPE, parse_scope
from app.oauth.service import ClientProblem
from app.telemetry import note, tokens_issued, traced
from app.vault import service as vault

router = APIRouter(tags=["oauth"])

MAX_REGISTRATION_BYTES = 16 * 1024
PENDING_TTL = 600  # seconds a consent page stays valid
PENDING_PURPOSE = "authorization-request"
OptionalForm = Annotated[str | None, Form()]


class AuthorizationPageError(AppError):
    title = "This sign-in link cannot be used"


# -- discovery ---------------------------------------------------------------------------------


@router.get("/.well-known/oauth-authorization-server")
@router.get("/.well-known/openid-configuration")
async def as_metadata(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(
        authorization_server_metadata(settings), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/jwks.json")
async def jwks(keys: SigningKeysDep) -> JSONResponse:
    await keys.active()  # the first request of a new deployment creates the first key
    _, published = await keys.published()
    return JSONResponse({"keys": published}, headers={"Cache-Control": "public, max-age=60"})


# -- registration (RFC 7591) -----------------------------------------------------------------


@router.post("/register")
@traced("oauth.register")
async def register(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    limits: RateLimits = request.app.state.rate_limits
    ip = client_ip(request) or "unknown"
    verdict = await limits.hit(limits.rule(settings.registration_limit_ip), "register-ip", ip)
    if not verdict.allowed:
        return TooManyRequests("too many registrations from this address; retry later").response(
            {"Retry-After": str(verdict.retry_after)}
        )
    body = await request.body()
    if len(body) > MAX_REGISTRATION_BYTES:
        return InvalidRequest("the registration request is too large").response()
    try:
        metadata = json.loads(body or b"null")
    except ValueError:
        return InvalidRequest("the registration request must be JSON").response()
    try:
        registered = await register_client(
            session, secret_key=settings.secret_key_bytes, metadata=metadata, ip=ip
        )
    except OAuthError as exc:
        note(gatehouse__outcome="error", error__type=exc.error)
        return exc.response()
    note(
        gatehouse__outcome="registered",
        oauth__client_id=registered.client.client_id,
        oauth__auth_method=registered.client.token_endpoint_auth_method,
    )
    return JSONResponse(registration_response(registered), status_code=201, headers=NO_STORE)


# -- authorization ---------------------------------------------------------------------------


def _with_query(redirect_uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not urlsplit(redirect_uri).query:
        separator = "" if redirect_uri.endswith("?") else "?"
    else:
        separator = "" if redirect_uri.endswith("&") else "&"
    return f"{redirect_uri}{separator}{query}"


def _redirect(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    return RedirectResponse(_with_query(redirect_uri, params), status_code=303)


def _error_location(
    settings: Settings, redirect_uri: str, error: OAuthError, state: str | None
) -> str:
    # RFC 6749 §4.1.2.1 and RFC 9207 §2: error, error_description, state, and iss.
    return _with_query(
        redirect_uri,
        {
            "error": error.error,
            "error_description": error.description,
            "state": state,
            "iss": settings.issuer,
        },
    )


async def _refuse(
    request: Request,
    session: Any,
    settings: Settings,
    browser: Any,
    client: OAuthClient,
    redirect_uri: str,
    error: OAuthError,
    state: str | None,
) -> Response:
    """Send an authorization error back to the client, if its redirect URI is trusted.

    MCP 2025-11-25 "Open Redirection": authorization servers "SHOULD only automatically redirect
    the user agent if it trusts the redirection URI". Anyone can register https://evil.example,
    so a web redirect URI is trusted only once this person has approved this client there;
    loopback and app schemes land on the person's own device. Otherwise the error is shown on
    a page, with a link the person may choose to follow back to the app.
    """
    note(gatehouse__outcome="error", error__type=error.error)
    location = _error_location(settings, redirect_uri, error, state)
    trusted = is_native_redirect(redirect_uri) or (
        browser is not None
        and await service.consent_covers(
            session, user_id=browser.user_id, client=client, redirect_uri=redirect_uri, scopes=[]
        )
    )
    if trusted:
        return RedirectResponse(location, status_code=303)
    return render(
        request,
        "error.html",
        {
            "title": "This sign-in link cannot be used",
            "message": f"The app's request was refused: {error.description} ({error.error}).",
            "return_url": location,
            "return_host": urlsplit(redirect_uri).hostname,
        },
        status_code=400,
    )


def _consent_csp(redirect_uri: str) -> str:
    # Browsers apply form-action to the redirect that follows a form post, so the consent form
    # must be allowed to land on the client's redirect URI.
    return PAGE_CSP.replace("form-action 'self'", f"form-action 'self' {csp_source(redirect_uri)}")


@router.get("/authorize")
@traced("oauth.authorize")
async def authorize(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    browser: OptionalBrowserSession,
) -> Response:
    params = request.query_params
    # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    repeated = sorted(
        k for k in set(params.keys()) if k != "resource" and len(params.getlist(k)) > 1
    )

    # Until the client and its redirect URI are known to be genuine, errors go on a page: a
    # redirect to an unverified URI would make us an open redirector.
    try:
        if "client_id" in repeated or "redirect_uri" in repeated:
            raise ClientProblem("client_id and redirect_uri must each appear once.")
        client = await service.resolve_client(session, fetcher, params.get("client_id"))
        redirect_uri = params.get("redirect_uri")
        redirect_uri_given = redirect_uri is not None
        if redirect_uri is None:
            if len(client.redirect_uris) != 1:
                raise ClientProblem("The request has no redirect_uri.")
            redirect_uri = client.redirect_uris[0]
        elif (
            redirect_uri_problem(redirect_uri) is not None
            or find_registered(client.redirect_uris, redirect_uri) is None
        ):
            raise ClientProblem(
                "The redirect_uri is not one this client registered, so Gatehouse will not send "
                "you there."
            )
    except ClientProblem as exc:
        note(gatehouse__outcome="refused", error__type="invalid_client")
        raise AuthorizationPageError(str(exc)) from exc

    note(oauth__client_id=client.client_id, gatehouse__signed_in=browser is not None)
    state = params.get("state")
    try:
        if repeated:
            raise InvalidRequest(f"parameters repeated: {', '.join(repeated)}")
        # RFC 6749 §4.1.2.1: a missing parameter is invalid_request; another value is
        # unsupported_response_type.
        if not params.get("response_type"):
            raise InvalidRequest("response_type is required (code)")
        if params.get("response_type") != "code":
            raise UnsupportedResponseType("response_type must be code")
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClient("this client may not use the authorization code grant")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        # OAuth 2.1 §4.1.1 / MCP: PKCE is required, and S256 is the only method we accept.
        if not challenge:
            raise InvalidRequest("code_challenge is required (PKCE with S256)")
        if method != "S256":
            raise InvalidRequest("code_challenge_method must be S256")
        if not challenge_is_well_formed(challenge):
            raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
        scopes = parse_scope(params.get("scope"))
        service.check_client_scope(client, scopes)
        resource = service.check_resource(settings, params.getlist("resource"))
        if state is not None and len(state) > 2048:
            raise InvalidRequest("state is too long")
        prompt = set((params.get("prompt") or "").split())
    except OAuthError as exc:
        return await _refuse(request, session, settings, browser, client, redirect_uri, exc, state)

    if browser is None:
        if "none" in prompt:
            return await _refuse(
                request,
                session,
                settings,
                browser,
                client,
                redirect_uri,
                _Simple("login_required", "the user is not signed in"),
                state,
            )
        note(gatehouse__outcome="sign_in_required")
        return RedirectResponse(sign_in_url(f"{request.url.path}?{request.url.query}"), 303)

    remembered = "consent" not in prompt and await service.consent_covers(
        session, user_id=browser.user_id, client=client, redirect_uri=redirect_uri, scopes=scopes
    )
    if remembered:
        code = await service.approve(
            session,
            settings,
            browser=browser,
            client=client,
            redirect_uri=redirect_uri,
            scopes=scopes,
            resource=resource,
            code_challenge=challenge,
            remember=False,
            ip=client_ip(request),
            redirect_uri_given=redirect_uri_given,
        )
        note(gatehouse__outcome="consent_remembered")
        return _redirect(redirect_uri, {"code": code, "state": state, "iss": settings.issuer})
    if "none" in prompt:
        return await _refuse(
            request,
            session,
            settings,
            browser,
            client,
            redirect_uri,
            _Simple("consent_required", "the user must approve"),
            state,
        )

    pending = sign_blob(
        settings.secret_key_bytes,
        PENDING_PURPOSE,
        {
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scopes": scopes,
            "state": state,
            "code_challenge": challenge,
            "resource": resource,
            "redirect_uri_given": redirect_uri_given,
            "session": str(browser.id),
        },
        ttl=PENDING_TTL,
    )
    missing = await _missing_connectors(request, session, browser.user_id)
    note(gatehouse__outcome="consent_shown")
    return _consent_page(request, settings, client, redirect_uri, scopes, pending, missing)


async def _missing_connectors(request: Request, session: Any, user_id: uuid.UUID) -> list[Any]:
    """Enabled connectors the person has no credential for: the consent page can collect them."""
    enabled = request.app.state.connectors
    if not enabled:
        return []
    stored = await vault.for_user(session, user_id)
    return [c for name, c in enabled.items() if name not in stored]


class _Simple(OAuthError):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error  # type: ignore[misc]


def _consent_page(
    request: Request,
    settings: Settings,
    client: OAuthClient,
    redirect_uri: str,
    scopes: list[str],
    pending: str,
    missing: list[Any],
    *,
    error: str = "",
    credential_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    redirect = urlsplit(redirect_uri)
    return render(
        request,
        "consent.html",
        {
            "client_name": client.client_name or "An unnamed app",
            "verified_domain": urlsplit(client.client_id).hostname
            if client.kind == "cimd"
            else None,
            "redirect_host": redirect.hostname or f"{redirect.scheme}:",
            "redirect_scheme": redirect.scheme,
            "native_redirect": is_native_redirect(redirect_uri),
            "scopes": [(s, DESCRIPTIONS[s]) for s in scopes],
            "base_scope": BASE_SCOPE,
            "write_scope": WRITE_SCOPE,
            "pending": pending,
            "error": error,
            "connectors": missing,
            "credential_errors": credential_errors or {},
        },
        status_code=status_code,
        headers={"Content-Security-Policy": _consent_csp(redirect_uri)},
    )


@router.post("/consent", dependencies=[CsrfProtected])
@traced("oauth.consent")
async def consent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    browser: OptionalBrowserSession,
    pending: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    scope: Annotated[list[str] | None, Form()] = None,
) -> Response:
    if browser is None:
        raise AuthorizationPageError(
            "You were signed out before approving. Go back to the app and connect again."
        )
    data = unsign_blob(settings.secret_key_bytes, PENDING_PURPOSE, pending)
    if data is None or data.get("session") != str(browser.id):
        raise AuthorizationPageError(
            "This approval request has expired or was not made in this browser. Go back to the "
            "app and connect again."
        )
    try:
        client = await service.resolve_client(session, fetcher, data["client_id"])
    except ClientProblem as exc:
        raise AuthorizationPageError(str(exc)) from exc
    redirect_uri: str = data["redirect_uri"]
    if find_registered(client.redirect_uris, redirect_uri) is None:
        raise AuthorizationPageError("This client no longer uses that redirect URI.")
    state = data.get("state")
    ip = client_ip(request)
    if action == "deny":
        audit.record(
            session,
            "grant.denied",
            user_id=browser.user_id,
            ip=ip,
            client_id=client.client_id[:200],
        )
        note(gatehouse__outcome="denied", oauth__client_id=client.client_id)
        # The person chose to go back to the app: this redirect is theirs, not an attacker's.
        return RedirectResponse(
            _error_location(
                settings, redirect_uri, AccessDenied("the user denied the request"), state
            ),
            status_code=303,
        )
    if action != "approve":
        raise AuthorizationPageError("Choose Approve or Deny.")
    requested: list[str] = data["scopes"]
    chosen = set(scope or [])
    # `mcp` is always granted; optional scopes only when requested and left ticked.
    granted = [s for s in requested if s == BASE_SCOPE or s in chosen]

    # Credentials asked for on the page: each given one is validated upstream before anything
    # is issued; any failure shows the page again and keeps nothing.
    missing = await _missing_connectors(request, session, browser.user_id)
    form = await request.form()
    problems: dict[str, str] = {}
    for connector in missing:
        value = form.get(f"credential_{connector.name}")
        if not isinstance(value, str) or not value.strip():
            continue  # left empty: the tools will ask the person to connect later
        try:
            await connectors.connect(
                session,
                settings=settings,
                limits=request.app.state.rate_limits,
                envelope=request.app.state.envelope,
                cache=request.app.state.connector_cache,
                connector=connector,
                user_id=browser.user_id,
                secret_text=value,
                ip=ip,
            )
        except connectors.CredentialProblem as exc:
            problems[connector.name] = str(exc)
    if problems:
        note(gatehouse__outcome="credential_rejected")
        await session.rollback()
        # The rollback expired every loaded object, and an expired attribute read later would
        # try to load without await (MissingGreenlet): reload what the page reads.
        await session.refresh(browser)
        if (user := getattr(request.state, "user", None)) is not None:
            await session.refresh(user)
        if client in session:
            await session.refresh(client)
        return _consent_page(
            request,
            settings,
            client,
            redirect_uri,
            requested,
            pending,
            await _missing_connectors(request, session, browser.user_id),
            credential_errors=problems,
            status_code=400,
        )
    code = await service.approve(
        session,
        settings,
        browser=browser,
        client=client,
        redirect_uri=redirect_uri,
        scopes=granted,
        resource=data["resource"],
        code_challenge=data["code_challenge"],
        remember=True,
        ip=ip,
        redirect_uri_given=bool(data.get("redirect_uri_given", True)),
    )
    note(gatehouse__outcome="approved", oauth__scope=" ".join(granted))
    return _redirect(redirect_uri, {"code": code, "state": state, "iss": settings.issuer})


# -- tokens ------------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the request as application/x-www-form-urlencoded")
    form = await request.form(max_files=0, max_fields=50)
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequest("file uploads are not accepted")
        values.setdefault(key, []).append(value)
    # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    repeated = [k for k, v in values.items() if len(v) > 1 and k != "resource"]
    if repeated:
        raise InvalidRequest(f"parameters repeated: {', '.join(sorted(repeated))}")
    return values


def _one(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[0] if found else None


def _client_error(exc: OAuthError, request: Request) -> JSONResponse:
    note(gatehouse__outcome="error", error__type=exc.error)
    headers = {}
    if isinstance(exc, InvalidClient) and request.headers.get("authorization"):
        # RFC 6749 §5.2: 401 with the authentication scheme the client used.
        headers["WWW-Authenticate"] = 'Basic realm="gatehouse"'
    return exc.response(headers)


async def _authenticated_client(
    request: Request, session: Any, settings: Settings, fetcher: Any, values: dict[str, list[str]]
) -> OAuthClient:
    return await service.authenticate_client(
        session,
        settings,
        fetcher,
        authorization=request.headers.get("authorization"),
        form_client_id=_one(values, "client_id"),
        form_client_secret=_one(values, "client_secret"),
    )


@router.post("/token")
@traced("oauth.token")
async def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    keys: SigningKeysDep,
) -> Response:
    ip = client_ip(request)
    grant_type: str | None = None
    try:
        values = await _form(request)
        grant_type = _one(values, "grant_type")
        note(oauth__grant_type=grant_type)
        client = await _authenticated_client(request, session, settings, fetcher, values)
        resources = values.get("resource", [])
        if grant_type == "authorization_code":
            result = await service.exchange_code(
                session,
                settings,
                keys,
                client=client,
                code=_one(values, "code"),
                redirect_uri=_one(values, "redirect_uri"),
                verifier=_one(values, "code_verifier"),
                resources=resources,
                ip=ip,
            )
        elif grant_type == "refresh_token":
            result = await service.refresh(
                session,
                settings,
                keys,
                request.app.state.envelope,
                client=client,
                refresh_token=_one(values, "refresh_token"),
                scope=_one(values, "scope"),
                resources=resources,
                ip=ip,
            )
        elif not grant_type:
            raise InvalidRequest("grant_type is required")
        else:
            raise UnsupportedGrantType("grant_type must be authorization_code or refresh_token")
    except OAuthError as exc:
        return _client_error(exc, request)
    note(oauth__client_id=client.client_id)
    tokens_issued.add(1, {"oauth.grant_type": grant_type or ""})
    return JSONResponse(result.as_json(), headers=NO_STORE)


async def _token_request(
    request: Request, session: Any, settings: Settings, fetcher: Any
) -> tuple[OAuthClient, str, str | None]:
    """The authenticated client, `token` and `token_type_hint` of a revocation or
    introspection request (RFC 7009 §2.1, RFC 7662 §2.1)."""
    values = await _form(request)
    client = await _authenticated_client(request, session, settings, fetcher, values)
    token_value = _one(values, "token")
    if not token_value:
        raise InvalidRequest("token is required")
    return client, token_value, _one(values, "token_type_hint")


@router.post("/revoke")
@traced("oauth.revoke")
async def revoke(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    keys: SigningKeysDep,
) -> Response:
    try:
        client, token_value, hint = await _token_request(request, session, settings, fetcher)
    except OAuthError as exc:
        return _client_error(exc, request)
    grant, _ = await service.grant_for_token(session, settings, keys, token_value, hint)
    # RFC 7009 §2.2: invalid tokens, and tokens of other clients, still get 200.
    note(gatehouse__outcome="revoked" if grant and grant.client_pk == client.id else "ignored")
    if grant is not None and grant.client_pk == client.id:
        await service.revoke_grant(
            session,
            grant.id,
            reason="client_revocation",
            ip=client_ip(request),
            user_id=grant.user_id,
        )
    return Response(status_code=200, headers=NO_STORE)


@router.post("/introspect")
@traced("oauth.introspect")
async def introspect(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    keys: SigningKeysDep,
) -> Response:
    try:
        client, token_value, hint = await _token_request(request, session, settings, fetcher)
        if client.is_public:
            # RFC 7662 §2.1: "the endpoint MUST also require some form of authorization".
            raise InvalidClient("introspection needs a confidential client")
    except OAuthError as exc:
        return _client_error(exc, request)
    body = await service.introspect(session, settings, keys, token_value, hint, caller=client)
    note(gatehouse__outcome="active" if body.get("active") else "inactive")
    return JSONResponse(body, headers=NO_STORE)


# -- the user's connected apps -------------------------------------------------------------------


@router.get("/account/apps")
async def account_apps(
    request: Request, session: SessionDep, browser: CurrentBrowserSession, notice: str = ""
) -> Response:
    apps = await service.connected_apps(session, user_id=browser.user_id)
    message = "Access was revoked. The app must ask you again." if notice == "revoked" else ""
    return render(request, "apps.html", {"apps": apps, "notice": message})


@router.post("/account/apps/{client_pk}/revoke", dependencies=[CsrfProtected])
async def revoke_account_app(
    client_pk: uuid.UUID, request: Request, session: SessionDep, browser: CurrentBrowserSession
) -> Response:
    count = await service.revoke_app(
        session, user_id=browser.user_id, client_pk=client_pk, ip=client_ip(request)
    )
    if count == 0:
        raise NotFoundError("That app is not connected to your account.")
    return RedirectResponse("/account/apps?notice=revoked", status_code=303)
