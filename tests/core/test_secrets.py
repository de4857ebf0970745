"""Every credential form the drivers accept is masked by the one function in dbaudit.core.secrets."""

from __future__ import annotations

import pytest

from dbaudit.core import secrets
from dbaudit.core.secrets import MASK, mask_command, mask_conninfo, mask_mapping, mask_text, mask_url

CANARY = "Canary7Pw"

URL_FORMS = [
    f"mysql+pymysql://audit:{CANARY}@db.example:3306/blazz",
    f"mysql+pymysql://audit:{CANARY}@127.0.0.1/blazz?charset=utf8mb4",
    f"mysql+pymysql://audit:p@{CANARY}@db.example/blazz",  # unencoded @ in the password
    f"mysql+pymysql://audit:{CANARY}@x@y@db.example/blazz",  # several
    f"mysql+pymysql://audit:a/{CANARY}@db.example/blazz",  # an unencoded /
    f"mysql+pymysql://audit:a?{CANARY}@db.example/blazz",  # an unencoded ?
    f"mysql+pymysql://audit:a#{CANARY}@db.example/blazz",  # an unencoded #
    f"mysql+pymysql://audit:p%40{CANARY}@db.example/blazz",  # encoded
    f"mysql+pymysql://audit@db.example/blazz?password={CANARY}",
    f"mysql+pymysql://audit@db.example/blazz?passwd={CANARY}",
    f"mysql+pymysql://audit@db.example/blazz?charset=utf8&PASSWORD={CANARY}&ssl_ca=/ca.pem",
    f"mysql+pymysql://audit@db.example/blazz?ssl_key=/k.pem&ssl_password={CANARY}",
    f"postgresql+psycopg://audit@db.example/blazz?password={CANARY}",
    f"postgresql+psycopg://audit@db.example/blazz?sslpassword={CANARY}",
    f"postgresql+psycopg://audit@db.example/blazz?options=-c%20password%3D{CANARY}",
    f"postgresql+psycopg://audit@db.example/blazz?dsn=host%3Dh%20password%3D{CANARY}",
    f"postgresql://audit:{CANARY}@[::1]:5432/blazz",
    f"postgresql://audit:{CANARY}@/blazz?host=/var/run/postgresql",
    f"postgresql://audit:{CANARY}@db.example",
    f"mysql://audit:{CANARY}@localhost/blazz?unix_socket=/run/mysqld/mysqld.sock",
    f"s3://AKIDEXAMPLE:{CANARY}@bucket/backups",
    f"sftp://backup:{CANARY}@host/srv/backups",
    f"https://host/backups?token={CANARY}",
    f"https://host/backups?X-Amz-Signature={CANARY}&X-Amz-Credential=AK",
    f"mysql+pymysql://audit@db.example/blazz?pass%77ord={CANARY}",  # an encoded key
    f"mysql+pymysql:/audit:{CANARY}@db.example/blazz",  # one slash lost to pathlib in "file not found"
    f"postgresql:///blazz?host=/run/postgresql&password={CANARY}",  # an empty authority
]


@pytest.mark.parametrize("url", URL_FORMS)
def test_mask_url_hides_the_password_in_every_url_form(url: str) -> None:
    shown = mask_url(url)
    assert CANARY not in shown and "Canary" not in shown
    assert secrets.MASK in shown


@pytest.mark.parametrize("url", URL_FORMS)
def test_mask_text_hides_a_url_quoted_inside_an_error_message(url: str) -> None:
    for wrapped in (f"cannot connect to {url}: refused", f"connection to '{url}' failed", f'"source": "{url}"',
                    f"({url})", f"<{url}>"):
        assert CANARY not in mask_text(wrapped), wrapped


def test_mask_url_keeps_what_identifies_the_server() -> None:
    assert mask_url(f"mysql+pymysql://audit:{CANARY}@db.example:3306/blazz?charset=utf8mb4") == \
        "mysql+pymysql://audit:***@db.example:3306/blazz?charset=utf8mb4"
    assert mask_url(f"mysql+pymysql://audit:p@{CANARY}@db.example/blazz") == "mysql+pymysql://audit:***@db.example/blazz"
    assert mask_url("postgresql://audit@db/blazz?password=x&application_name=a") == \
        "postgresql://audit@db/blazz?password=***&application_name=a"


@pytest.mark.parametrize("url", ["sqlite:///var/db/a@b.sqlite", "sqlite:///rel.db?mode=ro",
                                 "mysql+pymysql://audit@db/blazz?read_default_file=/etc/dbaudit.cnf",
                                 "mysql://user@host/db?unix_socket=/a@b", "postgresql://db/blazz"])
def test_a_url_without_secrets_is_unchanged(url: str) -> None:
    assert mask_url(url) == url


@pytest.mark.parametrize("conninfo", [
    f"host=db password={CANARY} dbname=x",
    f"host=db password='{CANARY} with spaces' dbname=x",
    f"host=db password = '{CANARY}\\'quote' dbname=x",
    f"host=db sslpassword={CANARY}",
    f"host=db options='-c password={CANARY}'",
    f"user=a PASSWORD={CANARY}",
])
def test_libpq_conninfo_keywords_are_masked(conninfo: str) -> None:
    shown = mask_conninfo(conninfo)
    assert CANARY not in shown and "host=db" in shown or "user=a" in shown
    assert CANARY not in mask_text(conninfo)


def test_connect_argument_mappings_are_masked_also_as_reprs() -> None:
    args = {"host": "db", "user": "audit", "passwd": CANARY, "password": CANARY, "ssl": {"password": CANARY},
            "options": f"-c password={CANARY}", "port": 3306}
    shown = mask_mapping(args)
    assert CANARY not in repr(shown) and shown["host"] == "db" and shown["port"] == 3306
    assert CANARY not in mask_text(repr(args))
    assert CANARY not in mask_text(f"connect({args!r}) failed: {{\"password\": \"{CANARY}\"}}")
    assert CANARY not in mask_text(f"{{'passwd': b'{CANARY}'}}")


def test_a_remembered_secret_is_masked_wherever_a_driver_repeats_it() -> None:
    value = "Remembered9!x y"
    secrets.remember_secret(value)
    for text in (f"FATAL: role {value} does not exist", "at 'Remembered9%21x%20y'", "'Remembered9!x y'"):
        assert "Remembered9" not in mask_text(text)
    assert value in secrets.known_secrets()


def test_short_secrets_are_not_searched_for_by_value() -> None:
    secrets.remember_secret("ab")
    assert mask_text("table abc") == "table abc"
    assert mask_text("ab", secrets=["ab"]) == "ab"


def test_text_without_secrets_passes_unchanged() -> None:
    line = "PASS [rows] chats: 3 -> 4 rows (+1), host=db user=audit dbname=x (using password: YES)"
    assert mask_text(line) == line


def test_a_long_error_is_masked_before_it_is_cut_to_one_line() -> None:
    from dbaudit.core.errors import DbauditError

    message = str(DbauditError("x" * 280 + f" mysql://audit:{CANARY}@db/blazz"))
    assert CANARY[:6] not in message and len(message) <= 300


@pytest.mark.parametrize("line", ["author=ana passenger=3 bypass=1 compass=n key=5 id=7",
                                  "'author': 'ana', 'keys': 3"])
def test_keys_that_merely_look_like_secrets_are_shown(line: str) -> None:
    assert mask_text(line) == line


@pytest.mark.parametrize("command", [
    "mysql -uapp -pS3cretPw blazz < migrate.sql",
    "mariadb --user=app --password=S3cretPw blazz",
    "mysql --password S3cretPw blazz",
    "mysql -p'S3cret Pw' blazz",
    "DB_PASSWORD=S3cretPw php artisan migrate --force",
    "PGPASSWORD=S3cretPw psql -h db -c 'select 1'",
    "php artisan migrate --database='mysql://app:S3cretPw@db/blazz'",
])
def test_mask_command_hides_passwords_given_on_a_command_line(command: str) -> None:
    shown = mask_command(command)

    assert "S3cret" not in shown and MASK in shown


@pytest.mark.parametrize("command", ["mkdir -p /tmp/x && php artisan migrate --force", "mysql -p blazz",
                                     "php artisan migrate:rollback --step=2 --pretend"])
def test_mask_command_keeps_commands_without_a_password(command: str) -> None:
    assert mask_command(command) == command
