"""Session fixtures for the container tests (marker `containers`): podman with its private
configuration, the images built once per session, and the removal of everything the session
made, even when a test fails."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import missing
from tests.deploy.podman_support import (
    PREFIX,
    TIMINGS,
    Podman,
    have_podman,
    new_session_prefix,
    podman_environment,
    session_lock,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Fixtures of the container journeys are expensive: run those modules last in the session,
    # each once, so the image is built once and other tests are not held up.
    items.sort(key=lambda item: item.get_closest_marker("containers") is not None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        size = TIMINGS.pop("image size MB", None)
        times = "; ".join(f"{what} {seconds}s" for what, seconds in TIMINGS.items())
        terminalreporter.write_line(f"podman: image {size} MB; {times}")


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    absent = have_podman()
    if absent:
        missing(
            "podman",
            f"install {absent} (apt-get install podman runc debootstrap; .ci/run does this)",
        )
    started = time.monotonic()
    env = podman_environment()
    engine = Podman(env, new_session_prefix())
    with session_lock(engine.home):
        # Whatever an earlier session left (killed before its finalizers ran) goes first: the
        # lock says no other session is using it.
        engine.remove_everything(PREFIX)
        # The build cache is kept between sessions; what no build has used for a week goes.
        engine.run("image", "prune", "--force", "--filter", "until=168h", check=False)
        try:
            yield engine
        finally:
            engine.remove_everything(engine.session)
            leftovers = engine.leftovers(engine.session)
            engine.timed("container tests in all", started)
            assert not leftovers, f"left behind: {leftovers}"


@pytest.fixture(scope="session")
def gatehouse_image(podman: Podman) -> Iterator[str]:
    """The real Dockerfile built once per session, on the bootstrapped base image."""
    podman.base_image()
    tag = f"localhost/gatehouse:{podman.session}"
    try:
        podman.build_gatehouse(tag)
        size = int(podman.run("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        podman.timings["image size MB"] = round(size / 1e6, 1)
        yield tag
    finally:
        podman.run("rmi", "-f", tag, check=False)


@pytest.fixture(scope="session")
def standins(podman: Podman) -> None:
    podman.base_image()
    podman.standins()
