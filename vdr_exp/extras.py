"""The optional extras, and the one line a user sees when something needs one that is not installed.

``pip install vdr-exp`` trains, evaluates and ranks; figures (``plots``), the Optuna sweeper (``optuna``), the UI
check (``ui``), the tracking server (``server``) and Hydra's launchers (``launchers``) come with extras, so a lean
install does not carry matplotlib, Optuna or Playwright. What is asked for explicitly ends in one ``error:`` line
naming the package and the command that installs it; a by-product (a leaderboard's figures) is skipped with one
warning line. The optional packages are imported only here, when needed: ``--help`` never pays for them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re

from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)

PLOTS = ("matplotlib", "adjustText")  # import names of the `plots` extra
SUBMITIT = ("hydra-submitit-launcher", "launchers", "hydra_plugins.hydra_submitit_launcher")
# Hydra plugins a config can select, by (group, option): (who selects it, the package, its extra, its module).
PLUGINS = {
    ("sweeper", "optuna"): ("the Optuna sweeper (sweep=lr_search)", "hydra-optuna-sweeper", "optuna",
                            "hydra_plugins.hydra_optuna_sweeper"),
    ("launcher", "joblib"): ("hydra/launcher=joblib", "hydra-joblib-launcher", "launchers",
                             "hydra_plugins.hydra_joblib_launcher"),
    ("launcher", "submitit_local"): ("hydra/launcher=submitit_local", *SUBMITIT),
    ("launcher", "submitit_slurm"): ("the SLURM launcher (hydra/launcher=slurm)", *SUBMITIT),
}  # fmt: skip
_NOT_FOUND = re.compile(r"Could not (?:find|load) 'hydra/(\w+)/(\w+)'")
_warned: set[str] = set()


def install_hint(what: str, package: str, extra: str) -> str:
    return f"{what} needs {package}: pip install 'vdr-exp[{extra}]'"


def missing(*modules: str) -> str | None:
    """The first of ``modules`` that does not import (as its pip name), or None when all do."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def require(what: str, extra: str, *modules: str) -> None:
    """An explicit request (a flag, a config option) for what an extra brings: ConfigError when it is missing."""
    package = missing(*modules)
    if package is not None:
        raise ConfigError(install_hint(what, package, extra))


def available(what: str, extra: str, *modules: str) -> bool:
    """A by-product (figures beside a table): False, with one warning line per ``what`` and process, when the
    extra is missing, so the caller skips it and writes the rest."""
    package = missing(*modules)
    if package is not None and what not in _warned:
        _warned.add(what)
        log.warning("%s skipped, %s is not installed: pip install 'vdr-exp[%s]'", what, package, extra)
    return package is None


def missing_plugin(error: BaseException) -> ConfigError | None:
    """Hydra's "Could not find 'hydra/sweeper/optuna'" when the reason is that the plugin is not installed
    (``sweep=lr_search`` without the ``optuna`` extra): the line that says which extra to install."""
    found = _NOT_FOUND.search(str(error))
    plugin = PLUGINS.get(found.groups()) if found else None
    if plugin is None or _importable(plugin[3]):
        return None
    return ConfigError(install_hint(*plugin[:3]))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
