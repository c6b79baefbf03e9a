"""`dialer contacts import` and `dialer report` as an ops engineer runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import dialer, free_port, write_daemon_config

CAMPAIGNS = """
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{number}@customers
"""


def config(tmp_path: Path) -> str:
    path = write_daemon_config(tmp_path, api_port=free_port())
    path.write_text(path.read_text() + CAMPAIGNS)
    return str(path)


def test_import_adds_good_rows_and_reports_bad_ones_by_row(tmp_path: Path) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "phone,name,order_id\n"
        "13800001001,王小明,A1\n"
        "not-a-number,B,A2\n"
        "+12025550123,C,A3\n"
        "+86 138 0000 1001,D,A4\n"
    )
    done = dialer("contacts", "import", "refusal", str(csv_file), "--config", config(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "refusal: 1 added, 1 merged, 0 already finished, 2 refused" in done.stdout
    assert f"{csv_file}: line 3: phone: not a phone number" in done.stderr
    assert f"{csv_file}: line 4: phone: US is not an allowed country (CN)" in done.stderr


def test_report_of_a_campaign_without_attempts_is_empty(tmp_path: Path) -> None:
    path = config(tmp_path)
    as_json = dialer("report", "refusal", "--format", "json", "--config", path)
    as_csv = dialer("report", "refusal", "--format", "csv", "--config", path)
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
    assert as_csv.stdout.startswith("attempt_id,contact_id,name,phone,started_at")


def test_an_unknown_campaign_exits_2(tmp_path: Path) -> None:
    done = dialer("report", "nope", "--config", config(tmp_path))
    assert done.returncode == 2
    assert "no campaign 'nope'; defined: refusal" in done.stderr
