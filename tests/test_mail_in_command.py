"""`guest-journey mail-in` as a process: it says which setting it needs, and once
started it answers SMTP on its port, refuses what is not a reply of ours, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from guest_journey.settings import Settings
from tests.smtp_server import free_port

TIMEOUT = 60
DEV_TIMEOUT = 120  # the Temporal dev server starts first


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    env["GUEST_JOURNEY_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"GUEST_JOURNEY_{name.upper()}": value for name, value in settings.items()})
    return env


def test_it_names_the_setting_it_needs(tmp_path: Path) -> None:
    smtp = subprocess.run([sys.executable, "-m", "commands.cli", "mail-in"], env=environment(tmp_path),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    imap = subprocess.run([sys.executable, "-m", "commands.cli", "mail-in", "--imap"], env=environment(tmp_path),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (smtp.returncode, imap.returncode) == (2, 2)
    assert "GUEST_JOURNEY_MAIL_IN_PORT" in smtp.stderr and "GUEST_JOURNEY_IMAP_HOST" in imap.stderr


def test_the_receiver_answers_refuses_strangers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "mail-in"],
        env=environment(tmp_path, mail_in_port=str(port), email_from="Hotel <stay@hotel.example>"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        with smtp:
            smtp.ehlo()
            smtp.mail("someone@example.com")
            answers = [smtp.rcpt(to)[0] for to in ("reservas@hotel.example", "reply+x@guest-journey.localhost")]
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read().decode() if process.stdout else ""
    assert answers == [550, 550], output
    assert status == 0, output
    assert "reply+<token>@hotel.example" in output


def test_the_reply_domain_is_our_senders_unless_set(tmp_path: Path) -> None:
    assert Settings(email_from="Hotel Mar <Stay@Hotel.Example>").resolved_mail_in_domain == "hotel.example"
    assert Settings(email_from="x@hotel.example", mail_in_domain=" Replies.Example ").resolved_mail_in_domain == (
        "replies.example")
    assert Settings().resolved_mail_in_domain == "guest-journey.localhost"  # the worker's default sender's


def test_starttls_needs_both_the_certificate_and_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ValidationError, match="GUEST_JOURNEY_MAIL_IN_TLS_CERT and GUEST_JOURNEY_MAIL_IN_TLS_KEY"):
        Settings(mail_in_tls_cert=cert)
    with pytest.raises(ValidationError, match="no file at"):
        Settings(mail_in_tls_cert=cert, mail_in_tls_key=tmp_path / "missing.pem")


def test_dev_runs_the_receiver_when_its_port_is_set(tmp_path: Path) -> None:
    temporal, ui, api, mail_in = (free_port() for _ in range(4))
    env = environment(tmp_path, temporal_address=f"127.0.0.1:{temporal}", temporal_ui_port=str(ui),
                      api_port=str(api), mail_in_port=str(mail_in))
    log = tmp_path / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "commands.cli", "dev"], cwd=tmp_path, env=env,
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + DEV_TIMEOUT
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", mail_in, timeout=10)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
        with smtp:
            smtp.ehlo()
            smtp.mail("someone@example.com")
            refused = smtp.rcpt("reservas@guest-journey.localhost")[0]
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert (refused, status) == (550, 0), log.read_text(errors="replace")
