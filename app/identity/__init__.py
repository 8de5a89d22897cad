"""Sign-in through upstream identity providers: OpenID Connect by issuer, and GitHub."""
