"""`dialer contacts import` of a large CSV file: rows per second and peak memory, on SQLite and
PostgreSQL, next to a baseline that only reads and checks the rows (no store) in the same run.

    .venv/bin/python bench/contact_import.py [--rows 100000] [--skip-postgres]

Each run is the real command in its own process (`python -m dialer contacts import`), so its
peak memory (ru_maxrss of the child) is the import's own; rows per second is rows / wall time of
that process, start-up included. The file holds distinct numbers `+86138xxxxxxxx` with a name
and an order id; 1 row in 1000 is a bad number (refused, printed), as in life.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from tests.support import ALL_WEEK, write_daemon_config  # noqa: E402

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CAMPAIGN = f"""
campaigns:
  bench:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    calling_windows: {ALL_WEEK}
"""


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,name,order_id\n")
        for i in range(rows):
            phone = "not-a-number" if i % 1000 == 999 else f"+86138{i:08d}"
            out.write(f"{phone},客户{i},A{i}\n")


def run_child(args: list[str]) -> tuple[float, float, str]:
    """(wall s, peak resident MB of the child from /usr/bin/time -v, its stdout)"""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *args], capture_output=True, text=True, cwd=REPO, check=False
    )
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    peak_mb = float("nan")
    for line in done.stderr.splitlines():
        if "Maximum resident set size" in line:
            peak_mb = int(line.split()[-1]) / 1024
    return wall_s, peak_mb, done.stdout.strip()


async def create_pg_database() -> str:
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        csv_file = directory / "contacts.csv"
        write_csv(csv_file, options.rows)
        size_mb = csv_file.stat().st_size / 1e6
        print(f"{options.rows:,} rows, {size_mb:.1f} MB of CSV")
        baseline = [sys.executable, str(Path(__file__).resolve()), "--only-check"]
        stores = [("SQLite", "sqlite:///var/outreach.db")]
        if not options.skip_postgres:
            stores.append(("PostgreSQL", asyncio.run(create_pg_database())))
        for label, url in [("read + check only (no store)", None), *stores]:
            config = write_daemon_config(directory, api_port=8080, store_url=url or stores[0][1])
            config.write_text(config.read_text() + CAMPAIGN)
            if url is None:
                args = [*baseline, str(config), str(csv_file)]  # the same, without the store
            else:
                args = [sys.executable, "-m", "dialer", "contacts", "import", "bench",
                        str(csv_file), "--config", str(config)]  # fmt: skip
            wall_s, peak, out = run_child(args)
            rate = options.rows / wall_s
            figures = f"{rate:9,.0f} rows/s  {wall_s:6.1f} s  peak {peak:6.1f} MB"
            print(f"{label:<32} {figures}  {out[-80:]}")
            if url is not None and url.startswith("sqlite"):
                (directory / "var" / "outreach.db").unlink(missing_ok=True)


def only_check(config: str, csv_file: str) -> None:
    """The baseline: read and check every row as the import does, store nothing."""
    from dialer.calling.contact_import import RowError, check_row
    from dialer.calling.csv_contacts import CsvRecord, read_contacts_csv
    from dialer.config import load_settings

    campaign = load_settings(config).campaigns["bench"]
    good = 0
    for record in read_contacts_csv(Path(csv_file)):
        if isinstance(record, CsvRecord):
            try:
                check_row(record.values, campaign, default_region="CN")
                good += 1
            except RowError:
                pass
    print(good)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--only-check"]:
        only_check(sys.argv[2], sys.argv[3])
    else:
        main()
