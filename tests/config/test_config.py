"""The TOML configuration: what loads, and how each mistake is named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import OPSCOM_SCHEMA
from watcher.config import (
    ApiConfig,
    Secret,
    exposed_secrets,
    load_config,
    parse_duration,
    parse_size,
    preflight,
)
from watcher.errors import ConfigError, SecretUnavailableError
from watcher.shell.journal import PostgresTarget
from watcher.shell.statedir import StateDir
from watcher.shell.web.listener import address

if TYPE_CHECKING:
    from pathlib import Path

FULL = f"""
[service]
state_dir = "state"
batch_window = "1m"
max_file_size = "20MB"
gnupg_home = "gnupg"

[email]
host = "127.0.0.1"
port = 2525
starttls = true
username = "mailer"
password_file = "smtp.pass"
contact = "Imports desk <imports@host.example>"

[[tenant]]
name = "jcu"
drop_dir = "drop/jcu"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "registrar@jcu.example"
reply_to = "Import Admin <admin@jcu.example>"
require_encryption = true

[tenant.api]
url = "https://controller.example/api/OC_TOMA/v1/profiles/push"
token_env = "JCU_TOKEN"
concurrency = 4
rate_limit = 50

[[tenant]]
name = "uofx"
drop_dir = "/srv/sftp/uofx/upload"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "it@uofx.example"
reply_to = "admin@uofx.example"
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write a configuration file and return its path."""
    path = tmp_path / "watcher.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    """The problems the loader reports for ``text``."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_a_full_configuration_loads_with_paths_resolved(tmp_path: Path) -> None:
    """Every section loads; relative paths resolve against the file's folder."""
    config = load_config(write(tmp_path, FULL))
    assert config.service.state_dir == tmp_path / "state"
    assert (config.service.batch_window, config.service.max_file_size) == (60.0, 20_000_000)
    assert config.email is not None
    assert (config.email.port, config.email.starttls) == (2525, True)
    assert config.email.password == Secret(file=tmp_path / "smtp.pass")
    assert config.email.contact == "Imports desk <imports@host.example>"
    jcu = config.tenant("jcu")
    assert jcu.drop_dir == tmp_path / "drop" / "jcu"
    assert jcu.api == ApiConfig(
        url="https://controller.example/api/OC_TOMA/v1/profiles/push",
        token=Secret(env="JCU_TOKEN"),
        max_concurrency=4,
        rate_limit=50.0,
    )
    assert config.tenant("uofx").api is None
    assert config.service.gnupg_home == tmp_path / "gnupg"
    assert (jcu.require_encryption, config.tenant("uofx").require_encryption) == (True, False)
    assert StateDir(config.service.state_dir).outbox == tmp_path / "state" / "outbox"


def test_a_full_snapshot_tenant_reads_how_it_deactivates(tmp_path: Path) -> None:
    """snapshot, missing, safeguard_min_rows, and the API's deactivation settings load as given."""
    text = FULL.replace(
        "require_encryption = true\n",
        'require_encryption = true\nsnapshot = "full"\nmissing = "deactivate"\n'
        "safeguard_min_rows = 500\n",
    ).replace(
        "rate_limit = 50\n",
        'rate_limit = 50\ndeactivate_fields = { user_status = "inactive", active = false }\n'
        'deactivate_url = "https://controller.example/users/{unique_id}"\n'
        'deactivate_method = "DELETE"\nidentify = ["login_source", "campus"]\n',
    )
    jcu = load_config(write(tmp_path, text)).tenant("jcu")
    assert (jcu.snapshot, jcu.missing, jcu.safeguard_min_rows) == ("full", "deactivate", 500)
    assert jcu.api is not None
    assert jcu.api.deactivate_fields == (("user_status", "inactive"), ("active", False))
    assert jcu.api.deactivate_url == "https://controller.example/users/{unique_id}"
    assert (jcu.api.deactivate_method, jcu.api.identify) == ("DELETE", ("login_source", "campus"))
    uofx = load_config(write(tmp_path, FULL)).tenant("uofx")
    assert (uofx.snapshot, uofx.missing, uofx.safeguard_min_rows) == ("partial", "report", 0)


def test_defaults_apply_when_keys_are_left_out(tmp_path: Path) -> None:
    """A minimal file gets a 5 minute window and a 100 MiB limit."""
    config = load_config(write(tmp_path, '[service]\nstate_dir = "/var/lib/x"\n'))
    assert (config.service.batch_window, config.service.max_file_size) == (300.0, 100 * 1024**2)
    assert (config.email, config.tenants) == (None, ())
    assert config.service.http_listen is None  # no listener unless asked for


@pytest.mark.parametrize(
    ("listen", "bound"), [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0))]
)
def test_the_listen_address_takes_ipv4_and_bracketed_ipv6(
    tmp_path: Path, listen: str, bound: tuple[str, int]
) -> None:
    """``http_listen`` is kept as written and split where the listener binds."""
    config = load_config(write(tmp_path, f'[service]\nstate_dir = "s"\nhttp_listen = "{listen}"\n'))
    assert config.service.http_listen == listen
    assert address(listen) == bound


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        (300, 300.0),
        (0.5, 0.5),
        ("1.5m", 90.0),
        ("7d", 604800.0),
        ("1d12h", 129600.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    """Durations are numbers of seconds or text with d, h, m and s."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m", -1, True, "5w", "2h1d"])
def test_bad_durations(text: object) -> None:
    """Anything else is not a duration."""
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("text", "size"), [("100MB", 100_000_000), ("64 MiB", 64 * 1024**2), (5, 5)]
)
def test_sizes(text: object, size: int) -> None:
    """Sizes are bytes or text with a unit."""
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[service]\n", "service.state_dir: is required: the folder for the journal and outbox"),
        (
            '[service]\nstate_dir = "s"\nbatch_windw = 5\n',
            "service.batch_windw: is not a known key (did you mean 'batch_window'?)",
        ),
        (
            '[service]\nstate_dir = "s"\nbatch_window = "soon"\n',
            "service.batch_window: must be a duration such as '5m', '90s' or 300 (got 'soon')",
        ),
        (
            '[service]\nstate_dir = "s"\nmax_file_size = "big"\n',
            "service.max_file_size: must be a size such as '100MB' (got 'big')",
        ),
        (
            (
                '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "s"\n'
                'failed_import_email = "a@b.c"\nreply_to = "a@b.c"\nrequire_encryption = "yes"\n'
            ),
            "tenant[0] \"a\".require_encryption: must be true or false (got 'yes')",
        ),
        (
            (
                '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\n'
                'schema = "s"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n'
                "encrypt_reports = true\n"
            ),
            'tenant[0] "a".encrypt_reports: needs signed_by: the customer\'s key to encrypt to',
        ),
        (
            '[service]\nstate_dir = "s"\nobserver = "inotify"\n',
            "service.observer: must be 'native' or 'polling' (got 'inotify')",
        ),
        ('[service]\nstate_dir = "s"\n[email]\nport = 25\n', "email.host: must be non-empty text"),
        (
            '[service]\nstate_dir = "s"\n[email]\nhost = "h"\ncontact = "desk"\n',
            "email.contact: must be an email address (got 'desk')",
        ),
        (
            '[service]\nstate_dir = "s"\n[email]\nhost = "h"\nstarttls = true\nssl = true\n',
            "email: choose starttls or ssl, not both",
        ),
        (
            '[service]\nstate_dir = "s"\n[email]\nhost = "h"\npassword = "x"\n',
            "email.password: secrets are never written in the configuration: use a *_file or *_env key",
        ),
        (
            '[service]\nstate_dir = "s"\n[email]\nhost = "h"\nusername = "u"\n',
            "email: username and password_file/password_env go together",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "Big Corp"\n',
            "tenant[0].name: must be lower-case letters, digits, '-' or '_', up to 64 characters",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\n',
            'tenant[0] "a".drop_dir: is required',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "nobody"\nreply_to = "a@b.c"\n',
            "tenant[0] \"a\".failed_import_email: must be an email address (got 'nobody')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "ftp://x"\ntoken_env = "T"\n',
            "tenant[0] \"a\".api.url: must be an http or https URL (got 'ftp://x')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "http://x"\ntoken = "abc"\n',
            'tenant[0] "a".api.token: secrets are never written in the configuration: use a *_file or *_env key',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "http://x"\n',
            'tenant[0] "a".api: needs token_file or token_env',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "http://x"\ntoken_env = "T"\nconcurrency = 0\n',
            'tenant[0] "a".api.concurrency: must be a whole number from 1 to 256 (got 0)',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n',
            'tenant "a": the name is used twice',
        ),
        ('[service]\nstate_dir = "s"\ntenant = 3\n', "service.tenant: is not a known key"),
        (
            '[service]\nstate_dir = "s"\n[email]\nhost = "h"\nfrom = "not an address"\n',
            "email.from: must be an email address (got 'not an address')",
        ),
        (
            '[service]\nstate_dir = "s"\nhttp_listen = "9464"\n',
            "service.http_listen: must be host:port, such as '127.0.0.1:9464' (got '9464')",
        ),
        (
            '[service]\nstate_dir = "s"\nhttp_listen = "localhost:99999"\n',
            "service.http_listen: must be host:port, such as '127.0.0.1:9464' (got 'localhost:99999')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\nftps_user = "Big Corp"\n',
            "tenant[0] \"a\".ftps_user: must be an account name such as 'jcu' (got 'Big Corp')",
        ),
        (
            '[service]\nstate_dir = "s"\nmax_rows = "lots"\n',
            "service.max_rows: must be a whole number of rows (got 'lots')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "/srv/a"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[[tenant]]\nname = "b"\ndrop_dir = "/srv/a/nested"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n',
            'tenant "b".drop_dir: overlaps the drop folder of tenant "a" (/srv/a): drop folders must not contain one another',
        ),
        (
            '[service]\nstate_dir = "s"\ndatabase = "mysql://db/watcher"\n',
            "service.database: must be a URL such as 'postgresql://watcher@db/watcher' (got 'mysql://db/watcher')",
        ),
        (
            '[service]\nstate_dir = "s"\ndatabase = "postgresql://watcher:hunter2@db/watcher"\n',
            "service.database: holds a password: put it in database_password_file or database_password_env",
        ),
        (
            '[service]\nstate_dir = "s"\ninstance = "a"\n',
            "service.instance: needs service.database",
        ),
        (
            '[service]\nstate_dir = "s"\ndatabase = "postgresql://db/w"\ninstance = "a b"\n',
            "service.instance: must be a name of letters, digits, '.', '_' or '-' (got 'a b')",
        ),
        (
            '[service]\nstate_dir = "s"\ndatabase = "postgresql://db/w"\nlease_timeout = "1s"\n',
            "service.lease_timeout: must be at least 3s (got 1s)",
        ),
        (
            '[service]\nstate_dir = "s"\ndatabase = "postgresql://db/w"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n',
            "tenant a: needs [tenant.api] with service.database: the embedded store is one host's file, not shared",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\nmissing = "deactivate"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\n',
            'tenant[0] "a".missing: needs snapshot = "full": only a full snapshot leaves users missing',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\nsnapshot = "full"\nmissing = "deactivate"\n',
            'tenant[0] "a".missing: "deactivate" needs [tenant.api]: the embedded store has no deactivation',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\nsnapshot = "whole"\n',
            "tenant[0] \"a\".snapshot: must be 'partial' or 'full' (got 'whole')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\ndeactivate_method = "PATCH"\n',
            "tenant[0] \"a\".api.deactivate_method: must be 'POST' or 'DELETE' (got 'PATCH')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\ndeactivate_url = "https://api.example/users/{id!r}"\n',
            (
                'tenant[0] "a".api.deactivate_url: may hold {field} placeholders naming a key or '
                "identify field, nothing else (got 'https://api.example/users/{id!r}')"
            ),
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\ndeactivate_fields = { apiToken = "x" }\n',
            "tenant[0] \"a\".api.deactivate_fields.apiToken: must be an API field's name (letters, digits, '_', '.', '-')",
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\ndeactivate_fields = { status = [1] }\n',
            'tenant[0] "a".api.deactivate_fields.status: must be text, a number or true/false (got [1])',
        ),
        (
            '[service]\nstate_dir = "s"\n[[tenant]]\nname = "a"\ndrop_dir = "d"\nschema = "x"\nfailed_import_email = "a@b.c"\nreply_to = "a@b.c"\n[tenant.api]\nurl = "https://api.example/push"\ntoken_env = "T"\nidentify = "login_source"\n',
            'tenant[0] "a".api.identify: must be a list of API field names',
        ),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    """A broken configuration names the key and the problem."""
    assert expected in problems(tmp_path, text)


def test_not_toml_is_reported(tmp_path: Path) -> None:
    """A syntax error names the file and says so."""
    assert problems(tmp_path, "[service\n")[0].startswith("not valid TOML")


def test_secrets_are_read_on_use_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token file is read each time; its repr shows where, not what."""
    token = tmp_path / "token"
    token.write_text("first\n")
    secret = Secret(file=token)
    assert secret.reveal() == "first"
    token.write_text("rotated")
    assert secret.reveal() == "rotated"
    assert "rotated" not in repr(secret)
    monkeypatch.setenv("TOKEN_X", "from-env")
    assert Secret(env="TOKEN_X").reveal() == "from-env"
    with pytest.raises(SecretUnavailableError, match="is empty"):
        Secret(env="NOT_SET_ANYWHERE").reveal()


def test_preflight_finds_what_would_fail_at_run_time(tmp_path: Path) -> None:
    """Missing folders, broken schemas and unreadable tokens are listed."""
    schema = tmp_path / "bad.json"
    schema.write_text('{"fields": []}')
    config = load_config(
        write(
            tmp_path,
            f"""
[service]
state_dir = "state"
ftps_log = "no-vsftpd.log"
[[tenant]]
name = "a"
drop_dir = "missing"
ftps_user = "a"
schema = "{schema}"
failed_import_email = "a@b.c"
reply_to = "a@b.c"
[tenant.api]
url = "http://127.0.0.1:1/push"
token_file = "no-token"
""",
        )
    )
    assert config.tenants[0].ftps_user == "a"
    assert preflight(config) == [
        (
            f"service.ftps_log: {tmp_path / 'no-vsftpd.log'} cannot be read by this account: FTPS "
            "uploads could not be told from interrupted ones (make it root:<service group> 0640)"
        ),
        f'tenant "a".drop_dir: {tmp_path / "missing"} is not a folder',
        'tenant "a".schema: fields: must be a non-empty list of field objects',
        (
            f'tenant "a".api: the token is unavailable: cannot read {tmp_path / "no-token"}: '
            f"[Errno 2] No such file or directory: '{tmp_path / 'no-token'}'"
        ),
    ]


def test_preflight_finds_a_deactivation_url_naming_no_known_field(tmp_path: Path) -> None:
    """{unique_id} is the key and {login_source} identifies; {campus} names nothing kept."""
    (tmp_path / "drop").mkdir()
    (tmp_path / "token").write_text("t\n")
    (tmp_path / "token").chmod(0o600)
    config = load_config(
        write(
            tmp_path,
            f"""
[service]
state_dir = "state"
[[tenant]]
name = "a"
drop_dir = "drop"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "a@b.c"
reply_to = "a@b.c"
snapshot = "full"
missing = "deactivate"
[tenant.api]
url = "http://127.0.0.1:1/push"
token_file = "token"
deactivate_url = "http://127.0.0.1:1/users/{{unique_id}}/{{login_source}}/{{campus}}"
""",
        )
    )
    assert preflight(config) == [
        (
            'tenant "a".api.deactivate_url: {campus} is neither a field of the schema\'s primary '
            "key (unique_id) nor in identify: every deactivation would be sent without it"
        )
    ]


def test_preflight_finds_what_would_refuse_every_encrypted_upload(tmp_path: Path) -> None:
    """A keyring that is not there, a tenant needing one without it, a customer key unread."""
    (tmp_path / "drop").mkdir()
    tenant = (
        f'drop_dir = "drop"\nschema = "{OPSCOM_SCHEMA}"\nfailed_import_email = "a@b.c"\n'
        'reply_to = "a@b.c"\n'
    )
    keyless = load_config(
        write(
            tmp_path,
            f'[service]\nstate_dir = "state"\n[[tenant]]\nname = "a"\n{tenant}'
            "require_encryption = true\n",
        )
    )
    assert preflight(keyless) == [
        (
            'tenant "a": takes only encrypted files, and service.gnupg_home is not set: every '
            "upload would be refused"
        )
    ]
    missing = load_config(
        write(
            tmp_path,
            f'[service]\nstate_dir = "state"\ngnupg_home = "no-gnupg"\n[[tenant]]\nname = "a"\n'
            f'{tenant}signed_by = "no-key.asc"\n',
        )
    )
    found = [p for p in preflight(missing) if "gpg is not installed" not in p]
    assert found == [
        (
            f"service.gnupg_home: {tmp_path / 'no-gnupg'} is not a folder this account can read: "
            "encrypted uploads could not be decrypted"
        ),
        (
            f'tenant "a".signed_by: {tmp_path / "no-key.asc"} cannot be read by this account: '
            "every upload would be refused"
        ),
    ]


def test_tenants_can_live_in_included_files(tmp_path: Path) -> None:
    """Include gathers one file per tenant; their problems name the file."""
    (tmp_path / "tenants.d").mkdir()
    (tmp_path / "tenants.d" / "b.toml").write_text(
        f'[[tenant]]\nname = "b"\ndrop_dir = "/srv/sftp/b/upload"\nschema = "{OPSCOM_SCHEMA}"\n'
        'failed_import_email = "x@b.example"\nreply_to = "y@b.example"\n'
    )
    config = load_config(
        write(tmp_path, 'include = ["tenants.d/*.toml"]\n[service]\nstate_dir = "s"\n')
    )
    assert [t.name for t in config.tenants] == ["b"]
    (tmp_path / "tenants.d" / "c.toml").write_text('[service]\n[[tenant]]\nname = "c"\n')
    found = problems(tmp_path, 'include = ["tenants.d/*.toml"]\n[service]\nstate_dir = "s"\n')
    assert "tenants.d/c.toml: service: an included file holds only [[tenant]] tables" in found
    assert 'tenants.d/c.toml: tenant[0] "c".drop_dir: is required' in found


def test_an_absolute_include_pattern_works(tmp_path: Path) -> None:
    """Include = ["/etc/user-import/tenants.d/*.toml"] is globbed from the root."""
    (tmp_path / "tenants.d").mkdir()
    (tmp_path / "tenants.d" / "b.toml").write_text(
        f'[[tenant]]\nname = "b"\ndrop_dir = "/srv/sftp/b/upload"\nschema = "{OPSCOM_SCHEMA}"\n'
        'failed_import_email = "x@b.example"\nreply_to = "y@b.example"\n'
    )
    config = load_config(
        write(
            tmp_path,
            f'include = ["{tmp_path}/tenants.d/*.toml"]\n[service]\nstate_dir = "s"\n',
        )
    )
    assert [t.name for t in config.tenants] == ["b"]


def test_secret_files_others_may_read_are_warned_of_and_writable_ones_refused(
    tmp_path: Path,
) -> None:
    """0644 is named as exposed; 0666 is named and never used as a token."""
    token = tmp_path / "jcu.token"
    token.write_text("tok\n")
    config = load_config(
        write(
            tmp_path,
            f"""
[service]
state_dir = "state"
[[tenant]]
name = "jcu"
drop_dir = "."
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "a@b.c"
reply_to = "a@b.c"
[tenant.api]
url = "http://127.0.0.1:1/push"
token_file = "jcu.token"
""",
        )
    )
    token.chmod(0o600)
    assert (exposed_secrets(config), preflight(config)) == ([], [])
    token.chmod(0o644)
    assert exposed_secrets(config) == [
        ('tenant "jcu".api.token_file', f"{token} is readable by every account (chmod o-rwx)")
    ]
    assert preflight(config) == []
    token.chmod(0o666)
    assert preflight(config) == [
        (
            f'tenant "jcu".api: the token is unavailable: refused: {token} is writable by every '
            "account (chmod o-rwx)"
        )
    ]


def test_a_shared_database_puts_each_instances_own_files_apart(tmp_path: Path) -> None:
    """With a database the journal is there; lock and status go in instances/<name>/."""
    secret = tmp_path / "db.pass"
    secret.write_text("pw\n")
    config = load_config(
        write(
            tmp_path,
            '[service]\nstate_dir = "state"\ndatabase = "postgresql://watcher@db/watcher"\n'
            'database_password_file = "db.pass"\ninstance = "sftp-2"\nlease_timeout = "20s"\n',
        )
    )
    assert (config.service.lease_timeout, config.service.instance) == (20.0, "sftp-2")
    state = StateDir.of(config.service)
    assert state.journal == PostgresTarget("postgresql://watcher@db/watcher", Secret(file=secret))
    assert state.own == tmp_path / "state" / "instances" / "sftp-2"
    assert (state.lock_file.parent, state.status.parent) == (state.own, state.own)
    assert (
        state.spool_root == tmp_path / "state" / "spool"
    )  # shared: a tenant's next owner reads it
    assert state.has_journal()
    alone = StateDir.of(load_config(write(tmp_path, '[service]\nstate_dir = "state"\n')).service)
    assert (alone.journal, alone.own) == (tmp_path / "state" / "journal.sqlite", alone.root)
    assert not alone.has_journal()
    # No password: a peer or certificate login.
    bare = '[service]\nstate_dir = "state"\ndatabase = "postgresql:///watcher"\n'
    assert load_config(write(tmp_path, bare)).service.database_password is None
