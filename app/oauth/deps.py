"""Named dependencies for the authorization server's routes: the only place in app/oauth that
reads the app's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request

from app.kit.envelope import Envelope
from app.kit.ratelimit import RateLimits
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.consent import ConsentExtension
from app.oauth.signing_keys import SigningKeys


def get_fetcher(request: Request) -> CimdFetcher:
    fetcher: CimdFetcher = request.app.state.cimd_fetcher
    return fetcher


def get_signing_keys(request: Request) -> SigningKeys:
    keys: SigningKeys = request.app.state.signing_keys
    return keys


def get_envelope(request: Request) -> Envelope:
    envelope: Envelope = request.app.state.envelope
    return envelope


def get_rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def get_consent_extensions(request: Request) -> Sequence[ConsentExtension]:
    extensions: Sequence[ConsentExtension] = request.app.state.consent_extensions
    return extensions


FetcherDep = Annotated[CimdFetcher, Depends(get_fetcher)]
SigningKeysDep = Annotated[SigningKeys, Depends(get_signing_keys)]
EnvelopeDep = Annotated[Envelope, Depends(get_envelope)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
ConsentExtensionsDep = Annotated[Sequence[ConsentExtension], Depends(get_consent_extensions)]
