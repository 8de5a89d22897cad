"""The vault tests use the connector tests' fake GitHub API and app."""

from tests.connectors.conftest import github_app
from tests.connectors.fake_github import fake_github

__all__ = ["fake_github", "github_app"]
