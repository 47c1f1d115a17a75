"""``model.compile``: the model's forward under ``torch.compile``, for evaluation and training alike.

``regional`` compiles each repeated block (the vision blocks and the language decoder layers: the classes a
model lists in ``_no_split_modules``) in place, so one compiled graph serves every layer of a kind and compile
time stays small; ``full`` compiles each Transformer module's whole Hugging Face model. Both compile in place
(``nn.Module.compile``, or the model's ``forward``): weights, their names and so the embedding cache key are
unchanged.

Compiling is lazy: it happens in the first forward of each new input shape. :class:`CompileClock` sums the wall
time of the calls during which a new graph was compiled (the compile and that one call) as ``compile_s``. A
compile that fails at run time costs no results: that module runs eagerly from then on, named in a log line and
counted in ``compile_fallbacks``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch._inductor.cpp_builder
from torch._dynamo.exc import TorchDynamoException
from torch._dynamo.utils import counters
from torch._inductor.exc import InductorError
from torch.utils._triton import has_triton

from vdr_exp.config import CompileMode
from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)

COMPILE_ERRORS = (TorchDynamoException, InductorError)
COMPILED_MARK = "_vdr_compiled"  # set on a module compile_model compiled, so a second call leaves it alone


@dataclass
class CompileClock:
    """What compiling cost this process so far: seconds in compiling calls and the modules that fell back."""

    mode: CompileMode
    modules: int = 0
    seconds: float = 0.0
    fallbacks: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """``compile_s`` and ``compile_fallbacks`` for MLflow; nothing when compiling is off."""
        if self.mode == CompileMode.off:
            return {}
        return {"compile_s": round(self.seconds, 3), "compile_fallbacks": float(len(self.fallbacks))}


def check_available(mode: CompileMode, device: torch.device) -> None:
    """One error line before loading anything when this install cannot run torch.compile on ``device``."""
    if mode == CompileMode.off:
        return
    missing = _missing_backend(device)
    if missing:
        raise ConfigError(f"model.compile={mode} cannot run here: {missing}; set model.compile=off.")


def _missing_backend(device: torch.device) -> str | None:
    """What torch.compile's default backend (inductor) lacks on this machine, or None."""
    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile does not support this Python/platform (torch {torch.__version__})"
    if device.type == "cuda":
        return None if has_triton() else "inductor needs Triton for CUDA, which is not installed (pip install triton)"
    try:
        torch._inductor.cpp_builder.get_cpp_compiler()
    except Exception as error:  # noqa: BLE001 - InvalidCxxCompiler, platform checks: no usable compiler
        return f"inductor needs a C++ compiler for {device.type} ({type(error).__name__}: install g++ or set CXX)"
    return None


def compile_model(model: torch.nn.Module, mode: CompileMode) -> CompileClock:
    """Compile ``model``'s blocks (``regional``) or Hugging Face models (``full``) in place; returns the clock
    that times them. Idempotent: modules compiled already are left as they are."""
    clock = CompileClock(mode)
    if mode == CompileMode.off:
        return clock
    check_available(mode, _device(model))
    regional = mode == CompileMode.regional
    for name, module in regional_targets(model) if regional else full_targets(model):
        if not getattr(module, COMPILED_MARK, False):
            compile_in_place(module, name, clock, whole_forward=not regional)
            clock.modules += 1
    log.info("model.compile=%s: %d modules compile on their first forward", mode, clock.modules)
    return clock


def regional_targets(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The repeated blocks: modules whose class a Hugging Face model inside names in ``_no_split_modules``."""
    block_classes = {cls for m in model.modules() for cls in (getattr(m, "_no_split_modules", None) or ())}
    return [(name, m) for name, m in model.named_modules() if type(m).__name__ in block_classes]


def full_targets(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Each Sentence Transformers Transformer module's model (a PEFT wrapper included), whole."""
    return [
        (f"{name}.model" if name else "model", m.model)
        for name, m in model.named_modules()
        if type(m).__name__ == "Transformer" and isinstance(getattr(m, "model", None), torch.nn.Module)
    ]


def compile_in_place(module: torch.nn.Module, name: str, clock: CompileClock, *, whole_forward: bool = False) -> None:
    """``module.compile()`` (its ``__call__``, how a block is called), or with ``whole_forward`` its ``forward``
    (Sentence Transformers calls a Transformer's model by ``forward``), wrapped: a call that compiles a new graph
    is timed; a compile error logs the module and runs it eagerly (then and afterwards) instead of losing the run."""
    if whole_forward:
        eager = module.forward
        compiled = torch.compile(eager)

        def run_eagerly() -> None:
            module.forward = eager
    else:
        eager = module._call_impl
        module.compile()
        compiled = module._compiled_call_impl

        def run_eagerly() -> None:
            module._compiled_call_impl = None

    def call(*args, **kwargs):
        graphs, start = counters["stats"]["unique_graphs"], time.perf_counter()
        try:
            out = compiled(*args, **kwargs)
        except COMPILE_ERRORS as error:
            run_eagerly()
            clock.fallbacks.append(name)
            first_line = (str(error).strip().splitlines() or [""])[0][:300]
            log.error(
                "model.compile=%s: compiling %s (%s) failed, it runs eagerly from now on (%s: %s); "
                "set model.compile=off to skip compiling",
                clock.mode, name, type(module).__name__, type(error).__name__, first_line,
            )  # fmt: skip
            return eager(*args, **kwargs)
        if counters["stats"]["unique_graphs"] != graphs:
            clock.seconds += time.perf_counter() - start
        return out

    if whole_forward:
        module.forward = call
    else:
        module._compiled_call_impl = call
    setattr(module, COMPILED_MARK, True)


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
