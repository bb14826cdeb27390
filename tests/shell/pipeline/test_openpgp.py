"""Encrypted uploads, decrypted by the real GnuPG with a keyring made for each test."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import Site, require, users_csv
from tests.support.smtpserver import SmtpServer
from watcher.cli import EXIT_OK
from watcher.shell.pipeline.openpgp import encrypted

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

SERVICE_KEY = "import@host.example"


def gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    """Run gpg in ``home``; its output."""
    return subprocess.run(
        [require("gpg"), "--batch", "--no-tty", "--quiet", "--homedir", str(home), *args],
        input=data, capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip


@pytest.fixture
def keyring() -> Iterator[Path]:
    """A GnuPG home with a key pair and no passphrase, as ``[service] gnupg_home`` holds.

    Made under a short path: the agent's socket lives in it.
    """
    home = Path(tempfile.mkdtemp(prefix="gpg"))
    home.chmod(0o700)
    gpg(home, "--passphrase", "", "--quick-gen-key", f"Import <{SERVICE_KEY}>", "default",
        "default", "never")  # fmt: skip
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(home, ignore_errors=True)


def encrypt(home: Path, data: bytes, recipient: str = SERVICE_KEY, *, armor: bool = False) -> bytes:
    """``data`` encrypted to ``recipient``'s key in ``home``."""
    extra = ["--armor"] if armor else []
    return gpg(home, "--trust-model", "always", "--recipient", recipient, *extra, "--encrypt",
               data=data)  # fmt: skip


def site(tmp_path: Path, keyring: Path, service: str = "", tenant: str = "") -> Site:
    """A site whose service decrypts with ``keyring``."""
    return Site(tmp_path, service=f'gnupg_home = "{keyring}"\n{service}', tenant=tenant)


def file_error(site: Site, name: str) -> dict[str, str]:
    """The file error in the .result.json archived for ``name``."""
    (path,) = site.bak.glob(f"{name.split('.', maxsplit=1)[0]}*.result.json")
    error: dict[str, str] = json.loads(path.read_text())["file_error"]
    return error


def test_an_encrypted_upload_is_imported_and_no_plaintext_is_left_outside_the_spool(
    tmp_path: Path, keyring: Path
) -> None:
    """users.csv.pgp: imported; .bak keeps the ciphertext; the spool keeps nothing."""
    plain = users_csv(5).encode()
    secret = encrypt(keyring, plain)
    here = site(tmp_path, keyring)
    here.drop_file("users.csv.pgp", secret)
    done = here.process("users.csv.pgp")
    assert done.returncode == EXIT_OK, done.stderr
    assert sorted(here.users()) == [f"U-{i:05d}" for i in range(5)]
    archived = [
        p for p in here.bak.iterdir() if p.name.startswith("users") and "result" not in p.name
    ]
    assert [p.read_bytes() for p in archived] == [secret]
    for folder in (here.drop, here.state / "spool"):
        for path in folder.rglob("*"):
            assert not path.is_file() or b"u1@jcu.example" not in path.read_bytes(), path


def test_an_armoured_message_named_csv_is_known_by_its_content(
    tmp_path: Path, keyring: Path
) -> None:
    """An ASCII-armoured file saved as users.csv is decrypted all the same."""
    here = site(tmp_path, keyring)
    armoured = encrypt(keyring, users_csv(3).encode(), armor=True)
    assert encrypted("users.csv", armoured[:64])
    here.drop_file("users.csv", armoured)
    assert here.process("users.csv").returncode == EXIT_OK
    assert len(here.users()) == 3


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another key", "encrypted to a key this service does not hold"),
        ("cut off", "damaged or incomplete"),
        ("too large once decrypted", "once decrypted it is larger than the limit of 1 MiB"),
    ],
)
def test_a_file_that_cannot_be_decrypted_says_why_and_imports_nothing(
    tmp_path: Path, keyring: Path, case: str, reason: str
) -> None:
    """Another recipient, a truncated upload, a bomb: file_encryption with what to do."""
    if case == "another key":
        other = Path(tempfile.mkdtemp(prefix="gpg"))
        try:
            gpg(other, "--passphrase", "", "--quick-gen-key", "Other <other@x.example>",
                "default", "default", "never")  # fmt: skip
            data = encrypt(other, users_csv(3).encode(), "other@x.example")
        finally:
            subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "gpg-agent"], check=False)
            shutil.rmtree(other, ignore_errors=True)
    elif case == "cut off":
        data = encrypt(keyring, users_csv(300).encode())[:-200]
    else:  # a few KB that inflate past the service's limit
        data = encrypt(keyring, b"unique_id\n" + b"U-00001\n" * 400_000)
    here = site(tmp_path, keyring, service='max_file_size = "1MB"')
    here.drop_file("users.csv.gpg", data)
    assert here.process("users.csv.gpg").returncode == EXIT_OK
    assert here.users() == {}
    found = file_error(here, "users.csv.gpg")
    assert found["code"] == "file_encryption", found
    assert reason in found["message"], found


def test_a_plain_upload_is_refused_when_encryption_is_required(
    tmp_path: Path, keyring: Path
) -> None:
    """require_encryption: a plain CSV imports nothing and the customer is told why."""
    here = site(tmp_path, keyring, tenant="require_encryption = true")
    here.drop_file("users.csv", users_csv(3))
    assert here.process("users.csv").returncode == EXIT_OK
    assert here.users() == {}
    found = file_error(here, "users.csv")
    assert found["code"] == "file_encryption"
    assert "not encrypted" in found["message"]
    here.drop_file("next.csv.pgp", encrypt(keyring, users_csv(2).encode()))
    assert here.process("next.csv.pgp").returncode == EXIT_OK
    assert len(here.users()) == 2


def test_the_check_lane_answers_an_encrypted_file(tmp_path: Path, keyring: Path) -> None:
    """check/users.csv.pgp: decrypted, checked, answered; nothing imported, nothing plain left."""
    here = site(tmp_path, keyring)
    check = here.drop / "check"
    check.mkdir()
    (check / "users.csv.pgp").write_bytes(encrypt(keyring, users_csv(4, bad_every=2).encode()))
    once = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(here.config)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert once.returncode == EXIT_OK, once.stderr
    answer = json.loads((check / "users.csv.pgp.check.json").read_text())
    assert (answer["rows"]["total"], answer["rows"]["failed"]) == (4, 2), answer
    assert here.users() == {}
    # The rows that would fail go by mail only: never in plain beside the file.
    for path in here.drop.rglob("*"):
        assert not path.is_file() or b"not-an-email" not in path.read_bytes(), path
    assert not list((here.state / "spool").rglob("*.plain"))


@pytest.fixture
def customer(keyring: Path) -> Iterator[tuple[Path, Path]]:
    """A customer's GnuPG home with a key pair, and its public key as the service is given it."""
    home = Path(tempfile.mkdtemp(prefix="gpg"))
    home.chmod(0o700)
    gpg(home, "--passphrase", "", "--quick-gen-key", "Registrar <registrar@jcu.example>",
        "default", "default", "never")  # fmt: skip
    public = home / "registrar.asc"
    public.write_bytes(gpg(home, "--armor", "--export", "registrar@jcu.example"))
    service = home / "service.asc"
    service.write_bytes(gpg(keyring, "--armor", "--export", SERVICE_KEY))
    yield home, public
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("signed", None),
        ("unsigned", "This file is not signed, and files for this account must be signed"),
        ("signed by another key", "signed, but not with the key registered for this account"),
        ("plain", "This file is not encrypted"),
    ],
)
def test_a_tenant_with_a_signing_key_takes_only_files_it_signed(
    tmp_path: Path, keyring: Path, customer: tuple[Path, Path], how: str, reason: str | None
) -> None:
    """signed_by: the customer's good signature imports; none, or another's, is refused."""
    home, public = customer
    data = users_csv(3).encode()
    to_service = ["--trust-model", "always", "--recipient-file", str(home / "service.asc")]
    if how == "signed":
        upload = gpg(home, *to_service, "--sign", "--encrypt", data=data)
    elif how == "unsigned":
        upload = gpg(home, *to_service, "--encrypt", data=data)
    elif how == "signed by another key":  # the service's own key signs: not the customer's
        upload = gpg(keyring, "--trust-model", "always", "--recipient", SERVICE_KEY, "--sign",
                     "--encrypt", data=data)  # fmt: skip
    else:
        upload = data
    here = site(tmp_path, keyring, tenant=f'signed_by = "{public}"')
    name = "users.csv" if how == "plain" else "users.csv.pgp"
    here.drop_file(name, upload)
    assert here.process(name).returncode == EXIT_OK
    if reason is None:
        assert len(here.users()) == 3
        return
    assert here.users() == {}
    found = file_error(here, name)
    assert (found["code"], reason in found["message"]) == ("file_encryption", True), found


def test_a_signing_key_the_host_cannot_read_is_said_and_nothing_imported(
    tmp_path: Path, keyring: Path
) -> None:
    """signed_by naming a missing file: the customer is told it is the administrator's to fix."""
    here = site(tmp_path, keyring, tenant=f'signed_by = "{tmp_path / "missing.asc"}"')
    here.drop_file("users.csv.pgp", encrypt(keyring, users_csv(2).encode()))
    assert here.process("users.csv.pgp").returncode == EXIT_OK
    assert here.users() == {}
    assert "tell your administrator" in file_error(here, "users.csv.pgp")["message"]


def test_a_report_is_encrypted_to_the_customers_key_when_asked(
    tmp_path: Path, keyring: Path, customer: tuple[Path, Path]
) -> None:
    """encrypt_reports: the list of rows not imported goes out readable by the customer alone."""
    home, public = customer
    data = users_csv(6, bad_every=2).encode()
    upload = gpg(home, "--trust-model", "always", "--recipient-file", str(home / "service.asc"),
                 "--sign", "--encrypt", data=data)  # fmt: skip
    with SmtpServer() as smtp:
        here = Site(
            tmp_path,
            smtp_port=smtp.port,
            service=f'gnupg_home = "{keyring}"',
            tenant=f'signed_by = "{public}"\nencrypt_reports = true',
        )
        here.drop_file("users.csv.pgp", upload)
        assert here.process("users.csv.pgp").returncode == EXIT_OK
        (message,) = smtp.messages
    (attachment,) = message.iter_attachments()
    name = attachment.get_filename()
    assert name == "failed-users.csv.gpg"
    sealed = attachment.get_content()
    assert b"not-an-email" not in sealed
    opened = gpg(home, "--decrypt", data=sealed).decode()
    assert opened.count("not-an-email") == 3
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"It is encrypted to your key: gpg --decrypt {name}" in text
    assert "not-an-email" not in text


def test_a_report_written_by_a_later_run_reads_the_encrypted_upload_again(
    tmp_path: Path, keyring: Path
) -> None:
    """Killed after the import: the next run's list of rows not imported is decrypted anew."""
    here = site(tmp_path, keyring)
    here.drop_file("users.csv.pgp", encrypt(keyring, users_csv(6, bad_every=2).encode()))
    killed = here.process("users.csv.pgp", env={"WATCHER_KILL_AT": "imported"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert here.process("users.csv.pgp").returncode == EXIT_OK
    (report,) = here.outbox()
    message = BytesParser(policy=policy.default).parsebytes(report.read_bytes())
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "failed-users.csv"
    assert attachment.get_content().count("not-an-email") == 3


@pytest.mark.parametrize("with_key", [False, True])
def test_an_encrypted_uploads_failed_rows_are_never_kept_in_plain(
    tmp_path: Path, keyring: Path, customer: tuple[Path, Path], with_key: bool
) -> None:
    """.bak keeps the list of rows not imported encrypted to the customer's key, or not at all."""
    home, public = customer
    data = users_csv(6, bad_every=2).encode()
    upload = gpg(home, "--trust-model", "always", "--recipient-file", str(home / "service.asc"),
                 "--sign", "--encrypt", data=data)  # fmt: skip
    here = site(tmp_path, keyring, tenant=f'signed_by = "{public}"' if with_key else "")
    here.drop_file("users.csv.pgp", upload)
    assert here.process("users.csv.pgp").returncode == EXIT_OK
    assert len(here.users()) == 3
    for path in here.drop.rglob("*"):
        assert not path.is_file() or b"not-an-email" not in path.read_bytes(), path
    kept = sorted(p.name for p in here.bak.glob("*.failures.csv*"))
    if not with_key:
        assert kept == []
        return
    (name,) = kept
    assert name.endswith(".failures.csv.gpg"), name
    opened = gpg(home, "--decrypt", data=(here.bak / name).read_bytes()).decode()
    assert opened.count("not-an-email") == 3
