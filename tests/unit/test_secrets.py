"""Secrets are masked by what they are (credential key names in any spelling, URI user-info, URL query
parameters), wherever a run records or prints its config, Hydra's own files included; environment
interpolations are recorded as written; ordinary settings that merely contain such a word stay readable; config
code never runs. A whole run's sinks: tests/e2e/test_secret_sinks.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vdr_exp.errors import ConfigError
from vdr_exp.launch.entrypoint import check_targets
from vdr_exp.launch.hydra_secrets import mask_file
from vdr_exp.runtime.redact import (
    MASK,
    RedactingFilter,
    is_secret,
    recorded_tree,
    redact_override,
    redact_text,
    redact_tree,
    redact_uri,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "key",
    ["token", "model.model_kwargs.hf_token", "tracking.password", "x.api_key", "AWS_SECRET_ACCESS_KEY",
     "hub_token", "aws_session_token", "authorization", "Authorization", "X-Api-Key", "apiKey", "sessionCookie",
     "private_key", "client_secret", "db_password", "credentials", "authToken", "bearer"],
)  # fmt: skip
def test_credential_looking_names_are_secret_in_any_spelling(key):
    assert is_secret(key) and is_secret(f"model.model_kwargs.{key}")
    assert redact_tree({"deep": [{"x": {key: "v"}}]}) == {"deep": [{"x": {key: MASK}}]}


@pytest.mark.parametrize(
    "key", ["loss.mini_batch_num_tokens", "reranker.true_token", "reranker.false_token", "max_new_tokens", "tokenizer"]
)
def test_settings_that_mention_tokens_stay_readable(key):
    assert not is_secret(key)
    assert redact_override(f"{key}=7") == f"{key}=7"
    assert redact_tree({key: 7}) == {key: 7}


def test_secrets_inside_inline_dicts_and_uris_are_masked():
    assert (
        redact_override("+model.model_kwargs={token: S1, dtype: bf16}")
        == "+model.model_kwargs={token: ***, dtype: bf16}"
    )
    assert redact_override("+model.model_kwargs={'hf_token': 'S2'}") == "+model.model_kwargs={'hf_token': ***}"
    assert redact_uri("http://alice:pw@mlflow:5000/x") == "http://***@mlflow:5000/x"
    assert redact_tree({"tracking": {"tracking_uri": "postgresql+psycopg://u:pw@db/m"}}) == {
        "tracking": {"tracking_uri": "postgresql+psycopg://***@db/m"}
    }
    record = logging.LogRecord("hydra", logging.INFO, "", 0, "#0 : %s", ("+model.model_kwargs={token: S3}",), None)
    RedactingFilter().filter(record)
    assert "S3" not in record.getMessage() and MASK in record.getMessage()


def test_urls_lose_their_credentials_in_any_part():
    text = (
        "see https://u:pw1@h/p?a=1&token=t0k&X-Amz-Signature=s1g#access_token=frag and Authorization: Bearer abcdef123"
    )
    clean = redact_text(text)
    for secret in ("pw1", "t0k", "s1g", "frag", "abcdef123"):
        assert secret not in clean
    assert "a=1" in clean and "https://***@h/p" in clean


def test_environment_interpolations_are_recorded_as_written(monkeypatch):
    monkeypatch.setenv("VDR_TEST_PLAIN", "sEcReT7plainenv")
    composed = OmegaConf.create({"a": "${oc.env:VDR_TEST_PLAIN}", "b": "x-${a}", "c": "${oc.env:NOPE_X,null}"})
    assert recorded_tree(composed) == {"a": "${oc.env:VDR_TEST_PLAIN}", "b": "x-${oc.env:VDR_TEST_PLAIN}",
                                       "c": "${oc.env:NOPE_X,null}"}  # fmt: skip
    assert composed.b == "x-sEcReT7plainenv"  # the job itself still reads the environment


def test_hydra_bookkeeping_files_are_masked_in_place(tmp_path):
    hydra_yaml = tmp_path / "hydra.yaml"
    hydra_yaml.write_text(
        "hydra:\n"
        "  overrides:\n    task: [model=tiny_qwen3_vl, +tracking.password=pw1]\n"
        "  job:\n    override_dirname: +tracking.password=pw1,model=tiny_qwen3_vl\n    name: ${hydra.job.name}\n"
    )
    assert mask_file(hydra_yaml)
    text = hydra_yaml.read_text()
    assert "pw1" not in text and text.count("+tracking.password=***") == 2 and "${hydra.job.name}" in text
    clean = tmp_path / "overrides.yaml"
    clean.write_text("- model=tiny_qwen3_vl\n")
    assert not mask_file(clean) and clean.read_text() == "- model=tiny_qwen3_vl\n"
    assert not mask_file(tmp_path / "absent.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hydra.yaml", "overrides.yaml"]  # no scratch file left


def test_security_defaults():
    check_targets({"hydra": {"callbacks": {"p": {"_target_": "vdr_exp.launch.sweep_callbacks.MlflowParentRun"}}}})
    with pytest.raises(ConfigError, match="_target_='os.system' is outside the allowed modules"):
        check_targets({"eval": {"x": {"_target_": "os.system"}}})
    assert redact_tree({"model": {"model_kwargs": {"token": "t", "dtype": "bf16"}}, "api_key": "k"}) == {
        "model": {"model_kwargs": {"token": "***", "dtype": "bf16"}},
        "api_key": "***",
    }
    assert redact_override("+tracking.password=pw") == "+tracking.password=***"
    conf = ROOT / "conf" / "model"
    remote = {p.stem for p in conf.glob("*.yaml") if "trust_remote_code: true" in p.read_text()}
    assert "qwen3_vl_embedding_2b" not in remote and "tiny_qwen3_vl" not in remote and "bge_vl_base" in remote
    makefile = (ROOT / "Makefile").read_text()
    assert "mlflow ui" in makefile and "--host 127.0.0.1" in makefile
