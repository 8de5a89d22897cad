"""Second factors: TOTP with recovery codes (RFC 6238), passkeys (WebAuthn L2), REQUIRE_MFA."""
