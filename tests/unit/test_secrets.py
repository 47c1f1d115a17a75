"""Secrets are masked by what they are (credential key names, URI user-info), wherever a run records or prints
its config; ordinary settings that merely contain such a word stay readable; config code never runs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from entrypoints import run_entry, runs_in

from vdr_exp.runtime.redact import MASK, RedactingFilter, is_secret, redact_override, redact_tree, redact_uri


@pytest.mark.parametrize(
    "key", ["token", "model.model_kwargs.hf_token", "tracking.password", "x.api_key", "AWS_SECRET_ACCESS_KEY"]
)
def test_credential_names_are_secret(key):
    assert is_secret(key)


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


@pytest.mark.slow
def test_dict_override_and_uri_credentials_reach_no_record(tmp_path, fixture_paths):
    secret, password = "hf_dictvalued_secret_42", "pw_in_uri_77"
    overrides = [
        "-m",
        "experiment=offline_eval",
        "dataset.max_eval_rows=4",
        f"+model.model_kwargs={{token: {secret}}}",
        "reranker.true_token=yes",
        f"+note=sqlite://user:{password}@host/db",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path, "evaluate")
    (parent,) = runs_in(tmp_path, "sweep")
    for logged in (run, parent):
        recorded = str(logged.data.params) + str(logged.data.tags)
        assert secret not in recorded and password not in recorded
    assert run.data.params["reranker.true_token"] == "yes"  # a setting, kept
    assert run.data.params["model.model_kwargs.token"] == MASK
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in {".yaml", ".log", ".json", ".txt"}]
    assert any(p.name == "multirun.yaml" for p in written)
    for path in written:
        text = path.read_text(errors="replace")
        assert secret not in text and password not in text, path
    assert secret not in result.stdout + result.stderr and password not in result.stdout + result.stderr


def test_a_target_on_the_command_line_is_refused_before_hydra_constructs_anything(tmp_path, fixture_paths):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    attack = f"+hydra.callbacks.x={{_target_: builtins.open, _args_: [{victim}, 'w']}}"
    result = run_entry("vdr_exp.evaluate", ["dry_run=true", attack], tmp_path, fixture_paths.root)
    assert result.returncode == 2
    assert victim.read_text() == "precious"  # the constructor never ran
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "builtins.open" in line and "outside the allowed modules" in line
    dotted = run_entry("vdr_exp.train", ["+hydra.callbacks.y._target_=os.system"], tmp_path / "t", fixture_paths.root)
    assert dotted.returncode == 2 and "os.system" in dotted.stderr
    assert not Path(tmp_path / "mlflow.db").exists()
