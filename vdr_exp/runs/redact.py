"""Secrets never reach MLflow, run folders, logs or stdout.

Two kinds are masked wherever a config value or an override is recorded:
- values under a key whose *name* is a credential (``token``, ``hf_token``, ``password``, ``api_key``...), also
  inside dict-valued overrides (``'+model.model_kwargs={token: S}'``); names merely containing such a word
  (``mini_batch_num_tokens``, ``reranker.true_token``) are settings and stay readable, so runs stay reproducible;
- the user-info part of any URI (``http://user:pw@host``, ``postgresql://user:pw@db/mlflow``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Key names (the last dotted segment, case-insensitive) that hold credentials.
SECRET_NAMES = frozenset(
    {
        "token",
        "hf_token",
        "access_token",
        "auth_token",
        "api_token",
        "bearer_token",
        "refresh_token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "secret_key",
        "secret_access_key",
        "aws_secret_access_key",
        "api_key",
        "apikey",
        "private_key",
        "credentials",
    }
)
SECRET_SUFFIXES = ("_password", "_secret", "_api_key", "_access_token", "_auth_token")

# scheme://user[:password]@ -> scheme://***@
# (Hydra writes overrides with ':' escaped: sqlite\://user\:pw@host.)
URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*\\?://)(?P<userinfo>[^@/\s'\"]+)@")
# key: value pairs inside an inline dict of an override ({token: S, dtype: bf16})
INLINE_PAIR = re.compile(
    r"(?P<key>'[^']*'|\"[^\"]*\"|[\w.-]+)(?P<sep>\s*:\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^,{}\[\]\s:]+)"
)


def is_secret(key: str) -> bool:
    name = key.rsplit(".", 1)[-1].lower()
    return name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES)


def redact_uri(text: str) -> str:
    """Credentials in URIs masked: ``http://alice:pw@host:5000`` -> ``http://***@host:5000``."""
    return URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def _redact_value(value: Any) -> Any:
    return redact_uri(value) if isinstance(value, str) else value


def redact_tree(tree: Any) -> Any:
    """A copy of a nested config container with secrets masked: values under credential keys, credentials in
    URIs, and secret ``key=value`` overrides inside lists (``sweep.train_first``, ``hydra.overrides.task``)."""
    if isinstance(tree, Mapping):
        return {k: (MASK if is_secret(str(k)) and v is not None else redact_tree(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact_override(v) if isinstance(v, str) else redact_tree(v) for v in tree]
    return _redact_value(tree)


def _redact_inline(value: str) -> str:
    """Credential keys inside a dict or list written in an override's value."""
    return INLINE_PAIR.sub(
        lambda m: f"{m['key']}{m['sep']}{MASK}" if is_secret(m["key"].strip("'\"")) else m.group(0),
        value,
    )


def redact_override(override: str) -> str:
    """``model.model_kwargs.token=hf_abc`` -> ``model.model_kwargs.token=***``; inline dicts and URIs too."""
    key, sep, value = override.partition("=")
    if not sep:
        return redact_uri(override)
    if is_secret(key.lstrip("+~")):
        return f"{key}{sep}{MASK}"
    if value.lstrip().startswith(("{", "[")):
        value = _redact_inline(value)
    return f"{key}{sep}{redact_uri(value)}"


def redact_overrides(overrides: list[str]) -> list[str]:
    return [redact_override(o) for o in overrides]


def redact_text(text: str) -> str:
    """A free-form line (a log record, a printed command): URIs, ``key=value`` words and ``key: value`` pairs."""
    text = _redact_inline(redact_uri(text))
    return re.sub(r"\S+=\S*", lambda m: redact_override(m.group(0)), text)


def redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with secrets masked in its message (formatted once, then kept as plain text)."""
    message = record.getMessage()
    clean = redact_text(message)
    if clean != message:
        record.msg, record.args = clean, ()
    return record


class RedactingFilter(logging.Filter):
    """For handlers of one's own: masks secrets in every record the handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        redacted_record(record)
        return True


def redact_logs() -> None:
    """Mask secrets in every log record of this process, Hydra's own included (it logs each job's overrides
    when it launches them, ``#0 : +model.model_kwargs={token: ...}``). A record factory, not a handler filter:
    Hydra replaces the handlers whenever it configures logging (at launch and for every job)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts", False):
        return

    def make_record(*args: object, **kwargs: object) -> logging.LogRecord:
        return redacted_record(factory(*args, **kwargs))

    make_record.redacts = True
    logging.setLogRecordFactory(make_record)
