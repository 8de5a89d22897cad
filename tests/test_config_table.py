"""Every variable in the README's configuration table refuses a bad value, naming itself.

The table is read from README.md ("## Configuration"), so a variable added there without an
entry in BAD_VALUES fails `test_every_readme_variable_has_a_bad_value`: add one (or, for a
variable Gatehouse does not parse itself, a reason in NOT_OURS).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from tests.conftest import ROOT

# variable -> (a value it must refuse, other variables that make the value matter)
CORP = {
    "OIDC_PROVIDERS": "corp",
    "OIDC_CORP_ISSUER": "https://idp.example",
    "OIDC_CORP_CLIENT_ID": "gatehouse",
    "OIDC_CORP_CLIENT_SECRET": "s",
}
BAD_VALUES: dict[str, tuple[str, dict[str, str]]] = {
    "DATABASE_URL": ("mysql://u@db.example/gh", {}),
    "PUBLIC_URL": ("gatehouse.example", {}),
    "HOST": ("http://127.0.0.1", {}),
    "PORT": ("70000", {}),
    "GATEHOUSE_ENV": ("staging", {}),
    "GATEHOUSE_ROLE": ("both", {}),
    "AUTH_ISSUER_URL": ("ftp://issuer.example", {}),
    "SECRET_KEY": ("short", {}),
    "VAULT_KEYS": ("not-a-key", {}),
    "REDIS_URL": ("http://redis.example", {}),
    "ALLOW_SIGNUP": ("maybe", {}),
    "ALLOWED_HOSTS": ("https://gatehouse.example/", {}),
    "ALLOWED_ORIGINS": ("notaurl", {}),
    "ACCESS_TOKEN_TTL": ("5", {}),
    "REFRESH_REUSE_GRACE": ("-1", {}),
    "CONNECTORS": ("gitlab", {}),
    "GITHUB_API_URL": ("api.github.com", {}),
    "VAR_DIR": ("{a_file}", {}),
    "SESSION_IDLE_TTL": ("1", {}),
    "SESSION_MAX_TTL": ("ten", {}),
    "SIGNIN_LIMIT_ACCOUNT": ("lots", {}),
    "SIGNIN_LIMIT_IP": ("lots", {}),
    "FORWARDED_ALLOW_IPS": ("my-proxy", {}),
    "SIGNUP_LIMIT_IP": ("often", {}),
    "AUTH_CODE_TTL": ("1", {}),
    "REFRESH_TOKEN_TTL": ("60", {}),
    "REGISTRATION_LIMIT_IP": ("30 per fortnight", {}),
    "REGISTRATION_UNUSED_TTL": ("1", {}),
    "PURGE_INTERVAL": ("-1", {}),
    "CREDENTIAL_LIMIT_USER": ("x", {}),
    "CREDENTIAL_LIMIT_IP": ("x", {}),
    "CONNECTOR_CACHE_TZ": ("Mars/Olympus_Mons", {}),
    "CONNECTOR_CACHE_TTL": ("0", {}),
    "LOG_FORMAT": ("xml", {}),
    "LOG_LEVEL": ("loud", {}),
    "CIMD_CA_BUNDLE": ("/nonexistent/ca.pem", {}),
    "CIMD_ALLOW_LOOPBACK": ("sometimes", {}),
    "AUTH_ISSUER_INTERNAL_URL": ("auth:8000", {}),
    "AUTH_INTROSPECTION_CLIENT_ID": (
        "gh_abc",
        {"GATEHOUSE_ROLE": "mcp", "AUTH_INTROSPECTION_CLIENT_SECRET": "s"},
    ),
    "AUTH_INTROSPECTION_CLIENT_SECRET": ("s", {"GATEHOUSE_ROLE": "mcp"}),
    "GATEHOUSE_ENV_FILE": ("/nonexistent/.env", {}),
    "BRAND_NAME": ("x" * 200, {}),
    "BRAND_LOGO_PATH": ("/nonexistent/logo.png", {}),
    "REQUIRE_MFA": ("maybe", {}),
    "REQUIRE_VERIFIED_EMAIL": ("maybe", {}),
    "PASSWORD_SIGNIN": ("maybe", {}),
    "MCP_TOOLSETS": ("everything", {}),
    "OIDC_PROVIDERS": ("not a name!", {}),
    # <NAME> is CORP here (see CORP below): the message must name OIDC_CORP_ISSUER and so on.
    "OIDC_<NAME>_ISSUER": ("ftp://idp.example", CORP),
    "OIDC_<NAME>_CLIENT_AUTH": ("client_secret_jwt", CORP),
    "OIDC_<NAME>_SCOPES": ("email profile", CORP),
    "OIDC_MICROSOFT_TENANT": (
        "a/b",
        {
            "OIDC_PROVIDERS": "microsoft",
            "OIDC_MICROSOFT_CLIENT_ID": "gatehouse",
            "OIDC_MICROSOFT_CLIENT_SECRET": "s",
        },
    ),
    "SIGNIN_LIMIT_ACCOUNT_TOTAL": ("lots", {}),
    "PASSWORD_HASH_CONCURRENCY": ("0", {}),
    "PASSWORD_HASH_PRIORITY": ("highest", {}),
    "REGISTRATION_MAX_UNUSED": ("0", {}),
    "SMTP_URL": ("http://mail.example", {}),
    "SMTP_USERNAME": ("mailer", {}),
    "SMTP_PASSWORD": ("secret", {}),
    "MAIL_FROM": ("nobody", {}),
    "VERIFY_LIMIT_ACCOUNT": ("lots", {}),
    "VERIFY_LIMIT_IP": ("lots", {}),
    "FORGOT_LIMIT_EMAIL": ("lots", {}),
    "FORGOT_LIMIT_IP": ("lots", {}),
    "EMAIL_CHANGE_LIMIT_ACCOUNT": ("lots", {}),
    "MAIL_TIMEOUT": ("0", {}),
    "MAIL_ATTEMPTS": ("0", {}),
    "MAIL_BACKOFF": ("-1", {}),
}
NOT_OURS = {"OTEL_*": "the OpenTelemetry SDK reads and checks its own variables"}


def readme_variables() -> list[str]:
    """The backticked names in the first column of the README's configuration table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith(("| variable", "|---")):
            continue
        first = line.split("|")[1]
        names += re.findall(r"`([A-Z][A-Z0-9_<>*]*)`", first)
    return names


def test_the_readme_table_is_found() -> None:
    names = readme_variables()
    assert {"DATABASE_URL", "PORT", "SIGNIN_LIMIT_IP", "GATEHOUSE_ENV_FILE"} <= set(names)


def test_every_readme_variable_has_a_bad_value() -> None:
    missing = [n for n in readme_variables() if n not in BAD_VALUES and n not in NOT_OURS]
    assert not missing, (
        f"README.md's configuration table lists {', '.join(missing)} with no entry in "
        "tests/test_config_table.py BAD_VALUES: add a value each must refuse"
    )


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_naming_the_variable(
    variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value, others = BAD_VALUES[variable]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("DATABASE_URL", "GATEHOUSE_ENV_FILE", "SECRET_KEY", "VAULT_KEYS", "VAR_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    for name, other in others.items():
        monkeypatch.setenv(name, other)
    variable = variable.replace("<NAME>", "CORP")  # one provider's variables
    monkeypatch.setenv(variable, value.format(a_file=a_file))
    with pytest.raises(ConfigError) as refused:
        load_settings(generate_secrets=False)
    message = str(refused.value)
    assert variable in message
    assert len(message.splitlines()) == 1, message


def test_the_good_defaults_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEHOUSE_ENV_FILE", raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    settings = load_settings(generate_secrets=False)
    assert settings.signin_limit_ip == "50 per 15 minutes"
    assert not (tmp_path / "var").exists()
