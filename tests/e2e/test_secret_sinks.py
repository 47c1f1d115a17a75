"""Secrets planted under many credential-looking key names, as literal values, through ``${oc.env:...}`` and
inside URLs, reach no sink: MLflow params, tags, artifacts and database, the run folder (ours and Hydra's),
logs, stdout/stderr and the leaderboard (issue 30)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from entrypoints import _env, entry_command, runs_in

from vdr_exp.runtime.redact import MASK, is_secret, recorded_tree, redact_text, redact_tree

LITERAL = {  # a literal secret on the command line, under names no fixed list had (anywhere in the tree)
    "+probe.hub_token": "sEcReT1hubtoken",
    "+probe.nested.deeper.authorization": "sEcReT2authz",
    "+probe.apiKey": "sEcReT3apikey",
    "+probe.sessionCookie": "sEcReT4cookie",
    "+probe.private_key": "sEcReT5privkey",
}
ENVIRONMENT = {"VDR_TEST_AWS_SESSION": "sEcReT6awssession", "VDR_TEST_PLAIN": "sEcReT7plainenv"}


@pytest.mark.parametrize(
    "key",
    ["hub_token", "aws_session_token", "authorization", "Authorization", "X-Api-Key", "apiKey", "sessionCookie",
     "private_key", "client_secret", "db_password", "credentials", "authToken", "bearer"],
)  # fmt: skip
def test_credential_looking_names_are_secret_in_any_spelling(key):
    assert is_secret(key) and is_secret(f"model.model_kwargs.{key}")
    assert redact_tree({"deep": [{"x": {key: "v"}}]}) == {"deep": [{"x": {key: MASK}}]}


def test_urls_lose_their_credentials_in_any_part():
    text = (
        "see https://u:pw1@h/p?a=1&token=t0k&X-Amz-Signature=s1g#access_token=frag and Authorization: Bearer abcdef123"
    )
    clean = redact_text(text)
    for secret in ("pw1", "t0k", "s1g", "frag", "abcdef123"):
        assert secret not in clean
    assert "a=1" in clean and "https://***@h/p" in clean


def test_environment_interpolations_are_recorded_as_written(monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setenv("VDR_TEST_PLAIN", "sEcReT7plainenv")
    composed = OmegaConf.create({"a": "${oc.env:VDR_TEST_PLAIN}", "b": "x-${a}", "c": "${oc.env:NOPE_X,null}"})
    assert recorded_tree(composed) == {"a": "${oc.env:VDR_TEST_PLAIN}", "b": "x-${oc.env:VDR_TEST_PLAIN}",
                                       "c": "${oc.env:NOPE_X,null}"}  # fmt: skip
    assert composed.b == "x-sEcReT7plainenv"  # the job itself still reads the environment


@pytest.mark.slow
def test_planted_secrets_reach_no_sink(tmp_path, fixture_paths):
    overrides = [
        "experiment=offline_eval",
        "dataset.max_eval_rows=4",
        *(f"{key}={value}" for key, value in LITERAL.items()),
        "+model.model_kwargs.token=${oc.env:VDR_TEST_AWS_SESSION}",  # reaches the model loader as a value
        "+probe.aws_session_token=${oc.env:VDR_TEST_AWS_SESSION}",
        "+note=${oc.env:VDR_TEST_PLAIN}",
        "+link='https://example.org/data?api_key=sEcReT8urlkey&page=2'",
    ]
    env = {**_env(), **ENVIRONMENT}
    command = entry_command("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    assert run.data.params["probe.hub_token"] == MASK
    assert run.data.params["note"] == "${oc.env:VDR_TEST_PLAIN}"  # recorded as written, not as its value
    board = subprocess.run(
        [sys.executable, "-m", "vdr_exp.leaderboard", f"--tracking-uri=sqlite:///{tmp_path / 'mlflow.db'}",
         f"--out-dir={tmp_path / 'leaderboards'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert board.returncode == 0, board.stderr[-2000:]
    secrets = [*LITERAL.values(), *ENVIRONMENT.values(), "sEcReT8urlkey"]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]  # database (and WAL), artifacts, run folder, logs
    assert any(p.name == "mlflow.db" for p in files) and any(p.name == "config.yaml" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {path}"
    printed = result.stdout + result.stderr + board.stdout + board.stderr
    assert not [s for s in secrets if s in printed]
