"""Named dependencies for the authorization server's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.oauth.cimd import CimdFetcher
from app.oauth.tokens import SigningKeys


def get_fetcher(request: Request) -> CimdFetcher:
    fetcher: CimdFetcher = request.app.state.cimd_fetcher
    return fetcher


def get_signing_keys(request: Request) -> SigningKeys:
    keys: SigningKeys = request.app.state.signing_keys
    return keys


FetcherDep = Annotated[CimdFetcher, Depends(get_fetcher)]
SigningKeysDep = Annotated[SigningKeys, Depends(get_signing_keys)]
