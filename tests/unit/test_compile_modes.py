"""``model.compile`` where this install cannot compile: one error line naming the key and the fix, before any model
loads; ``off`` asks nothing and reports nothing. In process, no model (compiled blocks: tests/e2e/test_compiled_blocks.py)."""

from __future__ import annotations

import pytest
import torch

from vdr_exp.config import CompileMode
from vdr_exp.errors import ConfigError
from vdr_exp.modeling import compiling

CPU = torch.device("cpu")


def test_no_dynamo_on_this_platform_is_one_error_line_naming_model_compile(monkeypatch):
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    with pytest.raises(ConfigError) as raised:
        compiling.check_available(CompileMode.regional, CPU)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("model.compile=regional cannot run here") and "set model.compile=off" in message


def test_no_cpp_compiler_for_cpu_inductor_says_what_to_install(monkeypatch):
    def no_compiler():
        raise RuntimeError("no g++")

    monkeypatch.setattr(torch._inductor.cpp_builder, "get_cpp_compiler", no_compiler)
    with pytest.raises(ConfigError, match=r"model.compile=full cannot run here: .*C\+\+ compiler.*install g\+\+"):
        compiling.check_available(CompileMode.full, CPU)


def test_off_checks_nothing_and_reports_nothing(monkeypatch):
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    compiling.check_available(CompileMode.off, CPU)
    assert compiling.compile_model(torch.nn.Linear(2, 2), CompileMode.off).metrics() == {}
