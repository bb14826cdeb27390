"""Benchmark: an encrypted upload decrypted and read, against GnuPG alone.

    uv run python tests/benchmarks/bench_openpgp.py [--mib 100]

A throwaway keyring encrypts a users file of about ``--mib`` MiB. In the
same run, alternating, median of three each:

- ``gpg --decrypt`` alone into a file (the baseline);
- the service's decryption (:func:`watcher.shell.pipeline.openpgp.readable`:
  the same gpg, its status read, the size bound applied);
- that decryption and the polars read of the plaintext (``read_table``), and
  the read of the same plaintext alone, for the share decryption adds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from watcher.config import Config, ServiceConfig, TenantConfig  # noqa: E402 - after the path is set
from watcher.core.reading import read_table  # noqa: E402
from watcher.core.tables import Table  # noqa: E402
from watcher.shell.pipeline.openpgp import readable  # noqa: E402

KEY = "bench@host.example"


def gpg(home: Path, *args: str) -> None:
    """Run gpg quietly in ``home``."""
    subprocess.run(
        ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", str(home), *args],
        check=True, capture_output=True,
    )  # fmt: skip


def timed(work: object) -> float:
    """Seconds ``work()`` took."""
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=float, default=100.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gpg"))
    work = Path(tempfile.mkdtemp(prefix="bench-openpgp"))
    try:
        home.chmod(0o700)
        gpg(home, "--passphrase", "", "--quick-gen-key", KEY, "default", "default", "never")
        plain = work / "users.csv"
        rows = int(args.mib * 1024**2 / 55)  # about 55 bytes a row
        with plain.open("w") as users:
            users.write("unique_id,first_name,last_name,email,user_type_id\n")
            for i in range(rows):
                users.write(
                    f"U{i:08d},First{i % 997},Last{i % 991},u{i}@staff.example.edu,{i % 5}\n"
                )
        sealed = work / "users.csv.pgp"
        gpg(home, "--trust-model", "always", "--recipient", KEY, "--output", str(sealed),
            "--encrypt", str(plain))  # fmt: skip
        config = Config(
            source=work / "watcher.toml",
            service=ServiceConfig(state_dir=work, gnupg_home=home, max_file_size=1024**3),
            email=None,
            tenants=(),
        )
        tenant = TenantConfig(
            name="bench", drop_dir=work, schema=work, failed_import_email="a@b.c", reply_to="a@b.c"
        )
        out = work / "out.csv"

        def bare() -> None:
            out.unlink(missing_ok=True)
            gpg(home, "--output", str(out), "--decrypt", str(sealed))

        def service() -> None:
            with readable(config, tenant, sealed, sealed.name) as source:
                assert isinstance(source, Path), source

        def service_and_read() -> None:
            with readable(config, tenant, sealed, sealed.name) as source:
                assert isinstance(source, Path), source
                assert isinstance(read_table(source, max_rows=rows + 10), Table)

        def read_alone() -> None:
            assert isinstance(read_table(plain, max_rows=rows + 10), Table)

        runs: dict[str, list[float]] = {"bare": [], "service": [], "both": [], "read": []}
        for _ in range(3):
            runs["bare"].append(timed(bare))
            runs["service"].append(timed(service))
            runs["both"].append(timed(service_and_read))
            runs["read"].append(timed(read_alone))
        median = {k: statistics.median(v) for k, v in runs.items()}
        size = sealed.stat().st_size / 1024**2
        print(f"{plain.stat().st_size / 1024**2:.0f} MiB of users, {size:.0f} MiB encrypted:")
        print(f"  gpg --decrypt alone       {median['bare']:6.2f} s")
        print(f"  the service's decryption  {median['service']:6.2f} s   "
              f"{median['service'] / median['bare']:.2f}x gpg alone")  # fmt: skip
        print(f"  decryption and the read   {median['both']:6.2f} s   "
              f"{median['both'] / median['read']:.2f}x the read of the plain file "
              f"({median['read']:.2f} s)")  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
