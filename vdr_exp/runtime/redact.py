"""Secrets never reach MLflow, run folders, logs or stdout.

Two kinds are masked wherever a config value or an override is recorded:
- values under a key whose *name* is a credential, anywhere in the tree: a name whose words hold token, secret,
  password, authorization, auth, session, cookie, credential, api key, private key... (``hub_token``,
  ``aws_session_token``, ``Authorization``, ``X-Api-Key``), also inside dict-valued overrides
  (``'+model.model_kwargs={token: S}'``); names that merely mention tokens (``mini_batch_num_tokens``,
  ``reranker.true_token``, ``pad_token``) are settings and stay readable, so runs stay reproducible;
- inside any URL: the user-info part (``http://user:pw@host``), credential parameters (``?token=S``,
  ``&X-Amz-Signature=S``), and ``Bearer S`` / ``Basic S`` values in free text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.basecontainer import BaseContainer

MASK = "***"

# A key is a credential when its name (the last dotted segment), split into words (``hub_token``,
# ``aws-session-token``, ``X-Api-Key``, ``authToken``), holds one of these words, or two adjacent ones below.
SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "secrets",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "authorization",
        "auth",
        "session",
        "sessionid",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "apikey",
        "bearer",
        "jwt",
        "signature",
    }
)
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("sas", "key")})
# Tokenizer and reranker settings that name a vocabulary token, not a credential (``reranker.true_token=yes``).
VOCABULARY_TOKENS = frozenset(
    {"true", "false", "yes", "no", "pad", "eos", "bos", "unk", "sep", "cls", "mask", "image", "video", "vision",
     "start", "end", "special", "query", "document", "placeholder"}
)  # fmt: skip
WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# scheme://user[:password]@ -> scheme://***@
# (Hydra writes overrides with ':' escaped: sqlite\://user\:pw@host.)
URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*\\?://)(?P<userinfo>[^@/\s'\"]+)@")
# ?token=S&page=2 -> ?token=***&page=2 (query and fragment parameters of any URL)
URL_PARAM = re.compile(r"(?P<lead>[?&;#])(?P<key>[^=&;#\s'\"]+)=(?P<value>[^&;#\s'\"]*)")
# Authorization: Bearer S / Basic S, wherever it is written
AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|Token|Digest)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})")
# key: value pairs inside an inline dict of an override ({token: S, dtype: bf16})
INLINE_PAIR = re.compile(
    r"(?P<key>'[^']*'|\"[^\"]*\"|[\w.-]+)(?P<sep>\s*:\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^,{}\[\]\s:]+)"
)


def _words(name: str) -> list[str]:
    return [w.lower() for w in WORD.findall(name)]


def is_secret(key: str) -> bool:
    """Whether a value under ``key`` is a credential, by the words of its last segment (case-insensitive)."""
    words = _words(key.rsplit(".", 1)[-1])
    for index, word in enumerate(words):
        if word == "token" and index > 0 and words[index - 1] in VOCABULARY_TOKENS:
            continue
        if word in SECRET_WORDS or tuple(words[index : index + 2]) in SECRET_PAIRS:
            return True
    return False


def redact_uri(text: str) -> str:
    """Credentials in URIs masked: ``http://alice:pw@host:5000`` -> ``http://***@host:5000``, credential
    parameters (``?token=S``, ``&X-Amz-Signature=S``) and ``Bearer S`` / ``Basic S`` values."""
    text = URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = URL_PARAM.sub(lambda m: f"{m['lead']}{m['key']}={MASK}" if is_secret(m["key"]) else m.group(0), text)
    return AUTH_SCHEME.sub(lambda m: f"{m['scheme']}{m['sep']}{MASK}", text)


def _redact_value(value: Any) -> Any:
    return redact_uri(value) if isinstance(value, str) else value


def redact_tree(tree: Any) -> Any:
    """A copy of a nested config container with secrets masked: values under credential keys, credentials in
    URIs, and secret ``key=value`` overrides inside lists (``sweep.train_first``, ``hydra.overrides.task``)."""
    if isinstance(tree, Mapping):
        return {k: (MASK if _masks(str(k), v) else redact_tree(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact_override(v) if isinstance(v, str) else redact_tree(v) for v in tree]
    return _redact_value(tree)


def _masks(key: str, value: Any) -> bool:
    """A credential key's value is masked whole (a dict of credentials too), except an instantiation spec
    (``hydra.callbacks.mask_secrets: {_target_: ...}``), which is code, and is searched like any other dict."""
    if value is None or not is_secret(key):
        return False
    return not (isinstance(value, Mapping) and "_target_" in value)


def _env_as_written(name: str, default: Any = "_NO_DEFAULT_") -> str:
    """``oc.env`` while a config is recorded: the interpolation as written, never the variable's value."""
    if default == "_NO_DEFAULT_":
        return "${oc.env:" + name + "}"
    return "${oc.env:" + name + "," + ("null" if default is None else str(default)) + "}"


@contextmanager
def _environment_unread() -> Iterator[None]:
    original = BaseContainer._resolvers.get("oc.env")
    OmegaConf.register_new_resolver("oc.env", _env_as_written, replace=True)
    try:
        yield
    finally:
        BaseContainer._resolvers["oc.env"] = original


def recorded_tree(composed: DictConfig) -> dict:
    """The config as runs record it (params, config.yaml, dry runs): resolved, except that ``${oc.env:...}``
    stays as written wherever it is used (a value from the environment is often a credential under a name no
    rule knows), and secrets masked by :func:`redact_tree`."""
    with _environment_unread():
        tree = OmegaConf.to_container(composed, resolve=True, enum_to_str=True)
    return redact_tree(tree)


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
