"""URL schemes a redirect may never use: the one list /register, /authorize and CIMD share."""

from __future__ import annotations

# Schemes that run script or read local data in a browser (draft-ietf-oauth-client-id-metadata-
# document §6.5 warns of "a URI scheme such as javascript:"). Refused anywhere a URI is accepted.
SCRIPT_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})

# Everything that is not a redirect target at all, on top of the script schemes.
FORBIDDEN_REDIRECT_SCHEMES = SCRIPT_SCHEMES | frozenset(
    {
        "filesystem",
        "view-source",
        "chrome",
        "chrome-extension",
        "ftp",
        "ws",
        "wss",
        "mailto",
        "tel",
        "sms",
        "intent",
    }
)
