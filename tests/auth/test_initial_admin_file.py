"""The first admin's password file lives only as long as that password opens the account."""

from __future__ import annotations

import pytest

from tests.conftest import StartServe

pytestmark = pytest.mark.slow


def test_the_password_file_goes_once_the_password_is_changed(start_serve: StartServe) -> None:
    serve = start_serve()
    password_file = serve.workdir / "robofleet-data" / "initial-admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    serve.stop()
    serve.start(wait="/readyz")
    assert password_file.exists(), "the password still opens the account: the file stays"
    with serve.api() as admin:
        assert admin.patch("/api/v1/users/admin", json={"password": "a-new-and-long-password"}).status_code == 200
    serve.stop()
    serve.start(wait="/readyz")
    assert not password_file.exists()
