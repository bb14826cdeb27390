"""OpenPGP: encrypted uploads decrypted with the service's key, into the spool only.

A file named ``*.pgp``, ``*.gpg`` or ``*.asc``, or whose first bytes are an
OpenPGP message (armoured, or a binary packet that opens an encrypted
message), is decrypted by GnuPG (``gpg``) with the service's own keyring,
``[service] gnupg_home``, into a file beside its spool copy that lives as
long as the reading: plaintext is never written to the drop folder or
``.bak/``, which keeps the encrypted original. The decrypted stream is bound
by the service's ``max_file_size`` (GnuPG's ``--max-output``): a small file
that inflates to gigabytes is a file error, not a full disk. A tenant with
``require_encryption = true`` has its plain uploads refused.

A file that cannot be decrypted is answered with a reason the customer can
act on (``file_encryption``): encrypted to another key, damaged or cut off,
too large once decrypted, or sent to a service with no key. With
``signed_by`` it must also carry the customer's good signature; with
``encrypt_reports`` the list of rows not imported is encrypted to that key
before it is attached (:func:`encrypt_to`).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from typing import TYPE_CHECKING

from watcher.core.codes import Code
from watcher.core.limits import EXPANSION
from watcher.core.reading import read_table
from watcher.core.tables import Table, Unreadable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from watcher.config import Config, TenantConfig
    from watcher.core.schema import Schema

__all__ = [
    "SUFFIXES",
    "encrypt_to",
    "encrypted",
    "kept_list",
    "public_key",
    "read_upload",
    "readable",
    "upload_encrypted",
]

SUFFIXES = (".pgp", ".gpg", ".asc")
_ARMOUR = b"-----BEGIN PGP MESSAGE-----"
# Packet tags that open an encrypted message: a session key for a public key
# (1) or for a passphrase (3).
_OPENING_TAGS = frozenset({1, 3})
_DECRYPT_WITHIN = 600.0  # seconds: a 100 MB file takes a few


def encrypted(name: str, head: bytes) -> bool:
    """Whether a file is an OpenPGP message: by its name, or by its first bytes."""
    if name.lower().endswith(SUFFIXES):
        return True
    if head.lstrip().startswith(_ARMOUR):
        return True
    if not head or not head[0] & 0x80:
        return False
    first = head[0]
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag in _OPENING_TAGS


@contextlib.contextmanager
def readable(
    config: Config, tenant: TenantConfig, spool: Path, name: str
) -> Iterator[Path | Unreadable]:
    """The spool copy to read: itself, its decryption (removed after), or why neither.

    ``name`` is the upload's name in the drop folder.
    """
    if not upload_encrypted(spool, name):
        if tenant.require_encryption or tenant.signed_by is not None:
            yield Unreadable(
                code=Code.FILE_ENCRYPTION,
                message=(
                    "This file is not encrypted, and files for this account must be: "
                    "encrypt it to the import service's public key (gpg --encrypt "
                    "--recipient ...) and upload the .pgp file."
                ),
            )
        else:
            yield spool
        return
    home = config.service.gnupg_home
    if home is None:
        yield Unreadable(
            code=Code.FILE_ENCRYPTION,
            message=(
                "This file is encrypted, and this import service has no key to decrypt it: "
                "upload it unencrypted, or ask your administrator for the service's key."
            ),
        )
        return
    plain = spool.with_name(spool.name + ".plain")
    signers = spool.with_name(spool.name + ".signers")
    try:
        yield _decrypt(
            home,
            spool,
            plain,
            limit=config.service.max_file_size,
            signer=None if tenant.signed_by is None else (tenant.signed_by, signers),
        )
    finally:
        plain.unlink(missing_ok=True)
        signers.unlink(missing_ok=True)


def upload_encrypted(spool: Path, name: str) -> bool:
    """Whether the upload whose spool copy this is came encrypted (by its name or its bytes)."""
    try:
        with spool.open("rb") as handle:
            head = handle.read(64)
    except OSError:  # gone after a crash: the name alone tells
        head = b""
    return encrypted(name, head)


def kept_list(
    config: Config, tenant: TenantConfig, spool: Path, name: str, data: bytes
) -> tuple[str, bytes] | None:
    """A list of rows not imported as the customer's folder may keep it: (suffix, bytes).

    A plain upload's list as it is (``""``); an encrypted upload's list never
    in plain: encrypted to the customer's key (``signed_by``, ``".gpg"``), or
    not kept at all (None) when there is no key to encrypt it to.
    """
    if not upload_encrypted(spool, name):
        return "", data
    home = config.service.gnupg_home
    if tenant.signed_by is None or home is None:
        return None
    sealed = encrypt_to(home, tenant.signed_by, data)
    return None if sealed is None else (".gpg", sealed)


def read_upload(
    config: Config, tenant: TenantConfig, spool: Path, name: str, schema: Schema
) -> Table | Unreadable:
    """A claimed upload's spool copy read as a table, decrypted first if it is encrypted.

    The plaintext is gone when this returns: the table is read whole. A
    workbook's sheet is the one whose header fits ``schema``.
    """
    with readable(config, tenant, spool, name) as source:
        if isinstance(source, Unreadable):
            return source
        return read_table(
            source,
            max_rows=config.service.max_rows,
            schema=schema,
            max_expanded=EXPANSION * config.service.max_file_size,
        )


def _decrypt(
    home: Path, source: Path, plain: Path, *, limit: int, signer: tuple[Path, Path] | None
) -> Path | Unreadable:
    """Decrypt ``source`` into ``plain`` with the keyring at ``home``; or why it could not.

    With ``signer`` (the customer's key file, and where its keyring may be
    written), the file must carry a good signature by that key.
    """
    plain.unlink(missing_ok=True)
    if shutil.which("gpg") is None:
        return _cannot("GnuPG (gpg) is not installed on the import host; tell your administrator")
    # No key to check a signature against: one the customer added is not looked at
    # (GnuPG would fail the decryption for want of the signer's key).
    verify: list[str] = ["--skip-verify"]
    fingerprints: set[str] = set()
    if signer is not None:
        fingerprints = _keyring(home, *signer)
        if not fingerprints:
            return _cannot(
                "the key files for this account must be signed with cannot be read on the "
                "import host; tell your administrator"
            )
        verify = ["--keyring", str(signer[1]), "--trust-model", "always"]
    done = _gpg(
        home, *verify, "--max-output", str(limit), "--output", str(plain), "--decrypt",
        str(source), status=True,
    )  # fmt: skip
    if done is None:
        return _cannot("the service could not run GnuPG")
    status = done.stdout.decode("utf-8", "replace")
    if not (done.returncode == 0 and "DECRYPTION_OKAY" in status and plain.is_file()):
        return _cannot(_why(status, done.stderr.decode("utf-8", "replace"), limit))
    if signer is not None and (refused := _unsigned(status, fingerprints)) is not None:
        return Unreadable(code=Code.FILE_ENCRYPTION, message=refused)
    return plain


def _gpg(
    home: Path, *args: str, status: bool = False, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes] | None:
    """Run gpg on the service's keyring; None if it is not installed or did not run.

    With ``status``, GnuPG's status lines come on stdout (so nothing else may).
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        return None
    lines = ["--status-fd", "1"] if status else []
    try:
        return subprocess.run(  # noqa: S603 - a fixed command; the paths are the service's own
            [gpg, "--batch", "--no-tty", "--quiet", "--homedir", str(home), *lines, *args],
            input=data, capture_output=True, check=False, timeout=_DECRYPT_WITHIN,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None


def _keyring(home: Path, key_file: Path, keyring: Path) -> set[str]:
    """The customer's key file as a keyring gpg can search; its keys' fingerprints."""
    try:
        key = key_file.read_bytes()
    except OSError:
        return set()
    if key.lstrip().startswith(b"-----BEGIN PGP"):
        dearmored = _gpg(home, "--dearmor", "--output", str(keyring), str(key_file))
        if dearmored is None or dearmored.returncode != 0:
            return set()
    else:
        keyring.write_bytes(key)
    shown = _gpg(home, "--with-colons", "--show-keys", str(key_file))
    if shown is None or shown.returncode != 0:
        return set()
    lines = shown.stdout.decode("utf-8", "replace").splitlines()
    return {line.split(":")[9] for line in lines if line.startswith("fpr:")}


def _unsigned(status: str, fingerprints: set[str]) -> str | None:
    """Why a decrypted file's signature is not the customer's; None when it is."""
    valid = [line.split() for line in status.splitlines() if line.startswith("[GNUPG:] VALIDSIG")]
    if any(fields[-1] in fingerprints or fields[2] in fingerprints for fields in valid):
        return None
    if "BADSIG" in status:
        return (
            "This file's signature does not match its content: it was changed after it was "
            "signed. Sign and encrypt the file again and upload it again."
        )
    if valid or "ERRSIG" in status:
        return (
            "This file is signed, but not with the key registered for this account: sign it "
            "with that key (gpg --sign --encrypt --local-user ...) and upload it again."
        )
    return (
        "This file is not signed, and files for this account must be signed with its "
        "registered key: sign and encrypt it (gpg --sign --encrypt --recipient ...) and "
        "upload it again."
    )


def _why(status: str, errors: str, limit: int) -> str:
    """What GnuPG's status lines and messages say went wrong, for the customer."""
    said = errors.lower()
    if "NO_SECKEY" in status or "no secret key" in said:
        return (
            "it is encrypted to a key this service does not hold. Encrypt it to the import "
            "service's public key (ask your administrator for it) and upload it again"
        )
    if "max-output" in said:
        return (
            f"once decrypted it is larger than the limit of {limit / 1024**2:,.0f} MiB; split "
            "it into smaller files, encrypt each and upload them one by one"
        )
    # Anything else (no data, a bad checksum, a packet cut short) is a damaged file.
    return (
        "it is damaged or incomplete (an upload cut off, or changed on the way). "
        "Encrypt the file again and upload it again"
    )


def _cannot(reason: str) -> Unreadable:
    return Unreadable(
        code=Code.FILE_ENCRYPTION, message=f"This file could not be decrypted: {reason}."
    )


def encrypt_to(home: Path, key_file: Path, data: bytes) -> bytes | None:
    """``data`` encrypted to the key in ``key_file`` (the customer's); None if it could not be."""
    done = _gpg(
        home, "--trust-model", "always", "--recipient-file", str(key_file), "--encrypt", data=data
    )
    return done.stdout if done is not None and done.returncode == 0 and done.stdout else None


def public_key(home: Path) -> str | None:
    """The service's public key from its keyring, armoured, for customers; None if there is none."""
    done = _gpg(home, "--armor", "--export")
    if done is None or done.returncode != 0:
        return None
    text = done.stdout.decode("ascii", "replace")
    return text if text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") else None
