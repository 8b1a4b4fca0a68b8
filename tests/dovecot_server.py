"""Debian's Dovecot (dovecot-imapd, installed by `.ci/run`) as an IMAP server on loopback for tests.

    async with DovecotServer() as dovecot:
        ...IMAP to dovecot.host:dovecot.port (plain) or dovecot.tls_port (IMAPS)...

An unprivileged instance: its own configuration, sockets, state and Maildir in a
temporary directory, one passwd-file user (`dovecot.user` / `dovecot.password`),
free loopback ports, no system service. IMAPS uses a certificate of a `trustme`
test CA (`dovecot.ca`). Run as root, the login processes run as Debian's
`dovenull` and the mail as `nobody`, as Dovecot refuses root for either.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import trustme

from tests.smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
READY_SECONDS = 30.0


class DovecotServer:
    def __init__(self, *, idle: bool = True) -> None:
        self.idle = idle  # False: a server that does not offer IDLE (the poller then polls)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port()
        self.user = "guest"
        self.password = secrets.token_urlsafe(12)
        self.ca = trustme.CA()
        self.directory = Path(tempfile.mkdtemp(prefix="gj-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    async def __aenter__(self) -> DovecotServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def start(self) -> None:
        root = os.getuid() == 0
        me = pwd.getpwuid(os.getuid()).pw_name
        mail_user = pwd.getpwnam("nobody") if root else pwd.getpwuid(os.getuid())
        os.chmod(self.directory, 0o755)  # the login and mail processes reach their parts of it
        for part in ("run", "state", "mail"):
            (self.directory / part).mkdir()
        os.chown(self.directory / "mail", mail_user.pw_uid, mail_user.pw_gid)
        cert = self.ca.issue_cert(self.host)
        cert.cert_chain_pems[0].write_to_path(str(self.directory / "cert.pem"))
        cert.private_key_pem.write_to_path(str(self.directory / "key.pem"))
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        (self.directory / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        config = self.directory / "dovecot.conf"
        config.write_text(_CONFIG.format(
            dir=self.directory, host=self.host, port=self.port, tls_port=self.tls_port,
            internal="dovecot" if root else me,
            internal_group="dovecot" if root else grp.getgrgid(os.getgid()).gr_name, login="dovenull" if root else me,
            uid=mail_user.pw_uid, gid=mail_user.pw_gid,
        ) + ("" if self.idle else "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n"))
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_SECONDS
        while not self._greets():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "dovecot.log")
                self.stop()
                raise RuntimeError(f"dovecot did not start: {log.read_text() if log.exists() else 'no log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as connection:
                return connection.recv(64).startswith(b"* OK")
        except OSError:
            return False


_CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""
