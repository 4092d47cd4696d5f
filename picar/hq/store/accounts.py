"""The console's accounts: username, role (operator, supervisor, auditor), language, and a password hashed with
argon2id by argon2-cffi (its default parameters, rehashed at login when those change). An account is disabled
rather than deleted while the audit trail names it; `delete_account` exists for mistakes."""

from __future__ import annotations

import re

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.rows import class_row

from picar.hq.store.records import LANGUAGES, ROLES, Account

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # the same rule as the accounts table's CHECK
MIN_PASSWORD = 10
_COLUMNS = "id, username, role, language, disabled, created_at, last_login_at"
_HASHER = PasswordHasher()
# A hash to verify against when the username is unknown, so a wrong username costs what a wrong password does.
_DUMMY_HASH = _HASHER.hash("picar: no such account")


class AccountError(ValueError):
    """A refused account change; the text names the field."""


def _check(username: str | None = None, role: str | None = None, language: str | None = None,
           password: str | None = None) -> None:
    if username is not None and not USERNAME.match(username):
        raise AccountError(f"username {username!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    if role is not None and role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    if language is not None and language not in LANGUAGES:
        raise AccountError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")


def create_account(conn: psycopg.Connection, username: str, password: str, role: str,
                   language: str = "ro") -> Account:
    """A new account; AccountError for a bad field or a username already taken."""
    _check(username, role, language, password)
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Account)) as cur:
            row = cur.execute(f"INSERT INTO accounts (username, password_hash, role, language) VALUES "
                              f"(%s, %s, %s, %s) RETURNING {_COLUMNS}",
                              (username, _HASHER.hash(password), role, language)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"username {username!r} is taken") from None
    assert row is not None
    return row


def get_account(conn: psycopg.Connection, username: str) -> Account | None:
    with conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM accounts WHERE username = %s", (username,)).fetchone()


def list_accounts(conn: psycopg.Connection) -> list[Account]:
    with conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY username").fetchall()


def update_account(conn: psycopg.Connection, username: str, *, role: str | None = None,
                   language: str | None = None, disabled: bool | None = None) -> Account:
    """Change role, language or disabled; AccountError if there is no such account."""
    _check(role=role, language=language)
    with conn.transaction(), conn.cursor(row_factory=class_row(Account)) as cur:
        row = cur.execute(
            f"UPDATE accounts SET role = COALESCE(%s, role), language = COALESCE(%s, language), "
            f"disabled = COALESCE(%s, disabled), updated_at = now() WHERE username = %s RETURNING {_COLUMNS}",
            (role, language, disabled, username)).fetchone()
    if row is None:
        raise AccountError(f"no account {username!r}")
    return row


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    _check(password=password)
    with conn.transaction():
        cur = conn.execute("UPDATE accounts SET password_hash = %s, updated_at = now() WHERE username = %s",
                           (_HASHER.hash(password), username))
    if cur.rowcount != 1:
        raise AccountError(f"no account {username!r}")


def delete_account(conn: psycopg.Connection, username: str) -> bool:
    """Remove an account (its audit entries keep the username); prefer disabling."""
    with conn.transaction():
        cur = conn.execute("DELETE FROM accounts WHERE username = %s", (username,))
    return cur.rowcount == 1


def authenticate(conn: psycopg.Connection, username: str, password: str) -> Account | None:
    """The account if the password is right and the account enabled, else None; records the login and
    rehashes a hash made with older parameters."""
    row = conn.execute("SELECT password_hash, disabled FROM accounts WHERE username = %s", (username,)).fetchone()
    stored = row[0] if row is not None else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row[1]:
        return None
    new_hash = _HASHER.hash(password) if _HASHER.check_needs_rehash(stored) else None
    with conn.transaction(), conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(f"UPDATE accounts SET last_login_at = now(), password_hash = COALESCE(%s, password_hash) "
                           f"WHERE username = %s RETURNING {_COLUMNS}", (new_hash, username)).fetchone()
