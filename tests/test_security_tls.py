"""TLS: a throwaway CA and server certificate, Redis with TLS only, ``rediss://`` clients."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import ConnectOptions, SessionStore, StoreUnavailable
from core.embedded import RedisServer, free_port, system_binary

pytestmark = pytest.mark.real

FAST = ConnectOptions(socket_timeout=1.0, connect_timeout=1.0, retries=0)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path, name: str = "ca") -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (EC keys: fast)."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name} test CA",
             cwd=directory)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{name}.crt", "-CAkey", f"{name}.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf", cwd=directory)
    return {"ca": directory / f"{name}.crt", "cert": directory / "server.crt", "key": directory / "server.key"}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, int, dict[str, Path]]]:
    binary = system_binary()
    if binary is None:
        pytest.skip("Debian's redis-server (built with TLS) is not installed (.ci/run installs it)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (.ci/run installs it)")
    directory = tmp_path_factory.mktemp("tls")
    certs = make_certs(directory)
    tls_port = free_port()
    server = RedisServer(binary=binary, directory=directory, args=[
        "--port", "0", "--tls-port", str(tls_port), "--tls-cert-file", str(certs["cert"]),
        "--tls-key-file", str(certs["key"]), "--tls-ca-cert-file", str(certs["ca"]),
        "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
    server.process = subprocess.Popen(server.command_line(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca']}"
        with SessionStore.from_url(url, options=ConnectOptions(retries=0)) as probe:
            for _ in range(200):
                try:
                    probe.ping()
                    break
                except StoreUnavailable:
                    if server.process.poll() is not None:
                        pytest.fail(f"TLS redis-server exited: {server.log_tail()}")
                    time.sleep(0.02)
        yield server, tls_port, certs
    finally:
        server.cleanup()


def test_login_and_validate_over_tls(tls_server) -> None:
    _, port, certs = tls_server
    with SessionStore.from_url(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['ca']}") as store:
        session, token = store.login("alice", app="crm")
        assert store.validate(token).sid == session.sid
        assert store.target()["tls"] is True


def test_client_without_the_ca_is_refused(tls_server, tmp_path: Path) -> None:
    _, port, _ = tls_server
    with SessionStore.from_url(f"rediss://127.0.0.1:{port}/0", options=FAST) as system_cas, \
            pytest.raises(StoreUnavailable):
        system_cas.ping()
    other_ca = make_certs(tmp_path, "other")["ca"]
    with SessionStore.from_url(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={other_ca}", options=FAST) as wrong, \
            pytest.raises(StoreUnavailable) as err:
        wrong.ping()
    assert "\n" not in str(err.value)


def test_plaintext_client_is_refused(tls_server) -> None:
    _, port, _ = tls_server
    with SessionStore.from_url(f"redis://127.0.0.1:{port}/0", options=FAST) as plain, \
            pytest.raises(StoreUnavailable):
        plain.ping()
