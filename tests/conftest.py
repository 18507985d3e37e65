"""Shared fixtures: the real local servers (tests/servers) for end-to-end tests."""

from tests.servers.fixtures import *  # noqa: F403
