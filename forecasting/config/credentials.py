"""Database credentials: reading a URL whose password holds '@', ':' or '/' (written as it is or
percent-encoded), the password given apart ($FORECASTING_DATABASE_PASSWORD or a file), and keeping
it out of every text: masked URLs, redacted messages and errors, masked log records."""

from __future__ import annotations

import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forecasting.errors import ConfigError, ForecastingError

DATABASE_URL_ENV = "FORECASTING_DATABASE_URL"
DATABASE_PASSWORD_ENV = "FORECASTING_DATABASE_PASSWORD"
DATABASE_PASSWORD_FILE_ENV = "FORECASTING_DATABASE_PASSWORD_FILE"


def url_origin() -> str:
    """Where the database URL came from, for error messages: the environment or the config file."""
    return DATABASE_URL_ENV if os.environ.get(DATABASE_URL_ENV) else f"database.url ({DATABASE_URL_ENV} is not set)"


# What follows the user name and password of a server URL: host (or [IPv6]), optional numeric port,
# optional /database (no '@'), optional ?query. The password ends at the first '@' after which this holds.
_SERVER_PART = re.compile(r"(?:\[[^\]/?@]+\]|[^/:?@\[\]]*)(?::[0-9]+)?(?:/[^?@]*)?(?:\?.*)?", re.S)
_SCHEME = re.compile(r"^([A-Za-z][\w+.-]*)://", re.S)
URL_FORM_HINT = (
    "the form is postgresql+psycopg://, then user:password@, then host:5432/database; in the user name and password write "
    "'@' as %40, ':' as %3A, '/' as %2F, '?' as %3F, '#' as %23 and '%' as %25, or leave the password out of the URL "
    f"and set {DATABASE_PASSWORD_ENV} (or {DATABASE_PASSWORD_FILE_ENV}, a file holding it) instead"
)


def _unreadable(problem: str) -> ConfigError:
    """The error for a URL that cannot be read: what is wrong and how to write it, never the URL itself."""
    return ConfigError(f"{url_origin()}: the database URL cannot be read: {problem}; {URL_FORM_HINT} (the URL is not shown: it may hold a password)")


def _clean(parsed: sa.engine.URL) -> bool:
    """Whether SQLAlchemy's reading kept every '@' in the credentials (none leaked into the host or database)."""
    return "@" not in (parsed.host or "") and "@" not in (parsed.database or "")


def _split_credentials(text: str) -> sa.engine.URL | None:
    """`text` read with the credentials ending at the first '@' after which a plain server part follows
    (host, numeric port, database, query): any '@', ':' or '/' before it belongs to the user name
    (up to the first ':') or the password. None when no '@' gives such a split."""
    match = _SCHEME.match(text)
    if match is None:
        return None
    scheme, rest = match.group(1), text[match.end():]
    for at in [index for index, char in enumerate(rest) if char == "@"]:
        if _SERVER_PART.fullmatch(rest[at + 1:]):
            user, colon, password = rest[:at].partition(":")
            credentials = quote(unquote(user), safe="") + (":" + quote(unquote(password), safe="") if colon else "")
            try:
                return sa.engine.make_url(f"{scheme}://{credentials}@{rest[at + 1:]}")
            except (sa.exc.ArgumentError, ValueError):
                return None
    return None


def parse_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """The URL as SQLAlchemy reads it, except that the password may hold '@', ':' and '/' unencoded
    (SQLAlchemy ends it at the first '@' and reads the rest as host and port); percent-encoded
    credentials are decoded. A URL that cannot be read is a ConfigError saying which part is wrong
    and how to encode the password, without any part of the URL beyond its scheme."""
    if isinstance(url, sa.engine.URL):
        return url
    text = str(url)
    match = _SCHEME.match(text)
    if match is None:
        raise _unreadable("it does not start with a scheme such as postgresql+psycopg:// or sqlite:///")
    parsed: sa.engine.URL | None
    try:
        parsed = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        parsed = None
    if match.group(1).lower().startswith("sqlite"):
        if parsed is None:
            raise _unreadable("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return parsed
    if parsed is not None and _clean(parsed):
        return parsed
    split = _split_credentials(text)
    if split is not None:
        return split
    tail = text[match.end():].rpartition("@")[2]
    server = re.match(r"(\[[^\]]*\]|[^/:?]*)(:[^/?]*)?", tail)
    if server is not None and server.group(2) and not server.group(2)[1:].isdigit():
        problem = "the port (after the host and ':') is not a number" + (
            " (no '@' separates a user name and password from the host)" if "@" not in text else ""
        )
    elif "@" in tail.split("?")[0].partition("/")[2]:
        problem = "the database name (after the host and '/') holds '@'"
    else:
        problem = "the host part (after the last '@') is not host, host:port or [IPv6 address]"
    raise _unreadable(problem)


def database_password() -> str | None:
    """The password from $FORECASTING_DATABASE_PASSWORD, or from the file $FORECASTING_DATABASE_PASSWORD_FILE
    names (its trailing newline stripped); None when neither is set."""
    direct, file = os.environ.get(DATABASE_PASSWORD_ENV), os.environ.get(DATABASE_PASSWORD_FILE_ENV)
    if direct and file:
        raise ConfigError(f"{DATABASE_PASSWORD_ENV} and {DATABASE_PASSWORD_FILE_ENV} are both set; set only one of them")
    if direct:
        return direct
    if not file:
        return None
    path = Path(file).expanduser()
    try:
        if not path.is_file():
            raise ConfigError(f"{DATABASE_PASSWORD_FILE_ENV}: {path} is not a file (it should hold the database password)")
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise ConfigError(f"{DATABASE_PASSWORD_FILE_ENV}: cannot read {path} ({error.strerror or type(error).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{DATABASE_PASSWORD_FILE_ENV}: {path} is not UTF-8 text") from None
    if not password:
        raise ConfigError(f"{DATABASE_PASSWORD_FILE_ENV}: {path} is empty (it should hold the database password)")
    return password


def with_password(url: str) -> str:
    """`url` checked readable (a ConfigError without any part of it otherwise) and, for a server
    database, with the password of `database_password()` when one is set: it replaces any password
    in the URL. SQLite has no password: its URL passes unchanged."""
    parsed = parse_url(url)
    password = database_password()
    if password is None or parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


def _mask_raw(url: str) -> str:
    """Everything between the scheme and the host (up to the last '@') masked, for URLs SQLAlchemy cannot parse."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    if ":" not in userinfo and "@" not in userinfo:
        return url  # a user name only
    return f"{scheme}://{userinfo.split(':', 1)[0].split('@', 1)[0]}:***@{host}"


def masked_url(engine_or_url: Engine | sa.engine.URL | str) -> str:
    """The database URL with any password replaced by ***, safe for logs and summaries."""
    try:
        url = parse_url(engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url)
    except Exception:  # noqa: BLE001 - an unparseable URL is masked as text
        text = str(engine_or_url)
        masked = _mask_raw(text)
        return masked if masked != text else f"{text.partition('://')[0][:40]}://(unreadable URL, not shown)"
    return url.render_as_string(hide_password=True)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


def _raw_password(text: str) -> str | None:
    """The password as written in the URL `text` (before any decoding), as `parse_url` splits it."""
    match = _SCHEME.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    try:
        standard: sa.engine.URL | None = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        standard = None
    if standard is not None and _clean(standard):
        return rest.partition("@")[0].partition(":")[2] if standard.password is not None else None
    for at in [index for index, char in enumerate(rest) if char == "@"]:
        if _SERVER_PART.fullmatch(rest[at + 1:]):
            return rest[:at].partition(":")[2] or None
    return rest.rpartition("@")[0].partition(":")[2] or None  # unreadable: all before the last '@' counts


_SEPARATOR = re.compile(r"[@:/?#&=%\s]|%[0-9A-Fa-f]{2}")


def _password_variants(password: str) -> set[str]:
    """`password` as it may appear in a text: as is and percent-encoded, whole and every run of its
    pieces between special characters (a misread URL shows such runs: `w/rd@host` of `p@ss:w/rd`),
    each long enough to replace safely (shorter ones would mangle every word)."""
    variants: set[str] = set()
    for form in {password, quote(password, safe=""), quote(password), quote(password, safe="").lower()}:
        separators = list(_SEPARATOR.finditer(form))
        starts = [0, *(match.end() for match in separators)]
        ends = [*(match.start() for match in separators), len(form)]
        variants |= {form[start:end] for start in starts for end in ends if end - start >= 4}
    return variants


def secrets_of(url: str | sa.engine.URL | None) -> set[str]:
    """Every form of the database password a text may hold: of `url`, of $FORECASTING_DATABASE_URL,
    and $FORECASTING_DATABASE_PASSWORD (or the file it names)."""
    passwords: set[str] = set()
    for candidate in (url, os.environ.get(DATABASE_URL_ENV)):
        if not candidate:
            continue
        if isinstance(candidate, str):
            raw = _raw_password(candidate)
            if raw:
                passwords |= {raw, unquote(raw)}
        try:
            parsed = parse_url(candidate)
        except Exception:  # noqa: BLE001 - an unreadable URL: its raw password is covered above
            continue
        if parsed.password:
            passwords.add(str(parsed.password))
    try:
        extra = database_password()
    except ConfigError:
        extra = None
    if extra:
        passwords.add(extra)
    return set().union(*(_password_variants(password) for password in passwords)) if passwords else set()


def redact(text: str, url: str | sa.engine.URL | None = None) -> str:
    """`text` with the database password (of `url`, of the environment; whole, encoded or in pieces)
    and the credentials of any URL written in it replaced by ***."""
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_IN_TEXT.sub(lambda match: _mask_raw(match.group(0)), text)


class MaskedError(Exception):
    """An error whose text held the database password, with the password masked (see `masked_error`)."""


def masked_error(error: BaseException) -> BaseException:
    """`error` itself when neither its text nor its traceback holds the database password; else an
    error of the same kind for the CLI (a ForecastingError keeps its class and exit status) whose
    text is masked, to raise `from None` so the original text stays out of every record."""
    text = str(error)
    details = "".join(traceback.format_exception(error))
    if redact(text) == text and redact(details) == details:
        return error
    masked = redact(f"{type(error).__name__}: {text}")
    if isinstance(error, ForecastingError):
        copy = type(error).__new__(type(error))
        Exception.__init__(copy, redact(text))
        return copy
    return MaskedError(masked)


_log_secrets: dict[tuple[str | None, ...], set[str]] = {}


def _environment_secrets() -> set[str]:
    """`secrets_of(None)`, kept while the environment variables it reads stay the same."""
    key = tuple(os.environ.get(name) for name in (DATABASE_URL_ENV, DATABASE_PASSWORD_ENV, DATABASE_PASSWORD_FILE_ENV))
    if key not in _log_secrets:
        _log_secrets.clear()
        _log_secrets[key] = secrets_of(None)
    return _log_secrets[key]


def _redact_record(record: logging.LogRecord) -> None:
    """Mask the database password in a log record's message and traceback (when it holds one)."""
    secrets = _environment_secrets()
    if not secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
        return
    masked = redact(message)
    if record.exc_info and record.exc_info[1] is not None:
        details = "".join(traceback.format_exception(*record.exc_info))
        if redact(details) != details:
            masked, record.exc_info, record.exc_text = masked + "\n" + redact(details).rstrip("\n"), None, None
    if masked != message:
        record.msg, record.args = masked, None


def mask_log_records() -> None:
    """Mask the database password in every log record this process makes from now on (Prefect's
    records sent to its API included): message and traceback. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_database_password", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _redact_record(record)
        return record

    make_record.masks_database_password = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
