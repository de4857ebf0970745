"""Credentials are never printed, logged or archived: one masking function for every form a driver accepts.

The forms, and where they turn up:

- a URL's userinfo (`user:pw@host` after `mysql+pymysql://`), also with an unencoded `@` or `/` in the password;
- a URL query parameter (`?password=`, `?passwd=`, `?sslpassword=`, any key naming a pass/secret/token) and
  the libpq values that carry a conninfo of their own (`?options=`, `?dsn=`);
- libpq conninfo keywords (`host=db password='p w' dbname=x`), as psycopg echoes them in errors;
- connect-argument mappings (PyMySQL's `passwd=`/`password=`, psycopg's `password=`), also as a repr;
- the values themselves (DBAUDIT_PASSWORD, a URL's password) wherever a driver error happens to repeat them.

Everything here is pure string work, so the core layer can test it exhaustively; the live layer feeds it
SQLAlchemy URLs rendered as text, the CLI every line it prints.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# Shorter secrets are not searched for by value: masking every "ab" in the output would hide more than a
# password. Structural masking (URLs, keywords) covers them.
MIN_SECRET_LENGTH = 4

# Key names whose value is a secret (over-masking a path such as passfile= costs nothing).
_SECRET_KEY = re.compile(r"passw|passphrase|pwd|secret|token|credential|signature|api_?key|access_?key|"
                         r"private_?key|authorization|^(?:pass|pw|sig|auth)$", re.IGNORECASE)
# Keys whose value is itself a conninfo or URL that may hold a password.
_NESTED_KEYS = frozenset({"options", "dsn", "conninfo", "url", "uri", "connect_args"})

# Also scheme:/user:pw@host: a URL passed through pathlib (a "file not found" message) loses a slash.
# scheme:/// (an empty authority) has no userinfo and is not matched at all.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*:/{1,2}(?!/)"
# A host after the last `@` of the authority: a name, an IPv4/IPv6 address, an optional port, then the end
# of the authority. It decides which `@` ends a password that holds unencoded `@`s.
_HOST_AFTER_AT = re.compile(r"@(?:\[[0-9A-Fa-f:.%\w]*\]|[\w.%~-]*)(?::\d*)?(?=[/?#]|$)")
_URL_IN_TEXT = re.compile(_SCHEME + r"[^\s\"'<>`]*")
# key=value pairs: conninfo words (value quoted or bare) and URL query items (value up to & or #).
_KEYWORD = re.compile(
    r"(?P<key>(?<![\w.-])[\w.-]+)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&#;,)'\"]*)"
)
# 'password': 'x' and "password": "x": a dict repr or JSON.
_QUOTED_ITEM = re.compile(
    r"(?P<key>(?P<q>['\"])(?P<name>[\w.-]+)(?P=q))(?P<eq>\s*:\s*)(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|b?'[^']*'|[^\s,{}\[\]'\"]+)"
)

_known: set[str] = set()


def is_secret_key(name: str) -> bool:
    """A connection keyword or query parameter whose value must not be shown."""
    return bool(_SECRET_KEY.search(name))


def remember_secret(value: object) -> None:
    """Register a credential so that any later output repeating it (say in a driver error) is masked."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        _known.add(value)


def known_secrets() -> frozenset[str]:
    return frozenset(_known)


def mask_url(url: str) -> str:
    """The URL as it may be printed, logged or archived: password, secret query values and nested
    conninfo passwords replaced by ***. Text that is no URL is masked as conninfo."""
    match = re.match(_SCHEME, url)
    if match is None:
        return mask_conninfo(url)
    scheme, rest = url[: match.end()], url[match.end():]
    authority_end = _userinfo_end(rest)
    if authority_end is not None:
        userinfo, rest = rest[:authority_end], rest[authority_end + 1:]
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:{MASK}" if colon else user
    else:
        userinfo = None
    path, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = _mask_query(query) + hash_ + fragment
    return scheme + (f"{userinfo}@" if userinfo is not None else "") + path + question + query


def _userinfo_end(rest: str) -> int | None:
    """Where the userinfo ends (at its `@`), or None when the URL has none.

    A password may hold unencoded `@`, `/`, `?` or `#`, so the userinfo ends at the last `@` that a host
    follows; when in doubt this masks too much (part of a host), never too little."""
    ends = [m.start() for m in _HOST_AFTER_AT.finditer(rest)]
    if not ends:
        first_at = rest.find("@")
        return first_at if first_at >= 0 else None
    return ends[-1]


def _mask_query(query: str) -> str:
    items = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        name = urllib.parse.unquote_plus(key)
        if eq and is_secret_key(name):
            value = MASK
        elif eq and name.lower() in _NESTED_KEYS:
            value = urllib.parse.quote(mask_text(urllib.parse.unquote_plus(value)), safe="*")
        items.append(key + eq + value)
    return "&".join(items)


def mask_conninfo(text: str) -> str:
    """libpq conninfo (`host=db password='p w'`) and any other `key=value` words: secret values masked."""

    def replace(match: re.Match[str]) -> str:
        key, value = match["key"], match["value"]
        if is_secret_key(key):
            return f"{key}{match['eq']}{MASK}"
        if key.lower() in _NESTED_KEYS and value:
            inner = value[1:-1] if value[0] in "'\"" and len(value) > 1 and value[-1] == value[0] else value
            masked = mask_text(inner)
            return f"{key}{match['eq']}{value[0] + masked + value[0] if inner is not value else masked}"
        return match.group(0)

    return _KEYWORD.sub(replace, text)


def mask_mapping(args: Mapping[str, Any]) -> dict[str, Any]:
    """Connect arguments (PyMySQL's passwd/password, psycopg's password, nested dsn/options) fit to show."""
    shown: dict[str, Any] = {}
    for key, value in args.items():
        if is_secret_key(str(key)) and value is not None:
            shown[key] = MASK
        elif isinstance(value, Mapping):
            shown[key] = mask_mapping(value)
        elif isinstance(value, str):
            shown[key] = mask_text(value)
        else:
            shown[key] = value
    return shown


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (an error message, a log line): every URL, conninfo keyword, dict item and known secret
    value in it masked. `secrets` adds to the values registered with remember_secret."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    text = _QUOTED_ITEM.sub(_mask_quoted_item, text)
    text = mask_conninfo(text)
    for secret in sorted({*_known, *(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)}, key=len, reverse=True):
        for form in _forms(secret):
            text = text.replace(form, MASK)
    return text


# A command line's own password options: the mysql/mariadb/mysqldump `-pSECRET` (attached: a space after -p asks
# for the password instead) and `--password VALUE` / `--pass VALUE` with a space (the `=` forms are keywords above).
_COMMAND_PASSWORD = re.compile(r"(?P<opt>(?<![\w-])-p)(?P<value>[^\s'\"]+|'[^']*'|\"[^\"]*\")"
                               r"|(?P<long>(?<![\w-])--pass(?:word)?\s+)(?P<word>'[^']*'|\"[^\"]*\"|[^\s-][^\s]*)")


def mask_command(command: str) -> str:
    """A command line as it may be shown or archived (`php artisan migrate`, `mysql -uapp -pS3cret db < m.sql`):
    its password options masked, then everything mask_text masks."""

    def replace(match: re.Match[str]) -> str:
        if match["opt"]:
            return f"{match['opt']}{MASK}"
        return f"{match['long']}{MASK}"

    return mask_text(_COMMAND_PASSWORD.sub(replace, command))


def _mask_quoted_item(match: re.Match[str]) -> str:
    if not is_secret_key(match["name"]):
        return match.group(0)
    return f"{match['key']}{match['eq']}{match['q']}{MASK}{match['q']}"


def _forms(secret: str) -> list[str]:
    """The ways a value is spelled in URLs, reprs and JSON."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe=""),
             urllib.parse.quote(secret), repr(secret)[1:-1]}
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)
