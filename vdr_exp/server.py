"""``python -m vdr_exp.server``: the team's tracking server and its users.

``serve`` is what `make server` runs: MLflow's server with served artifacts, behind MLflow's basic-auth app
whenever an admin password is configured, and refused on a non-loopback host when none is. ``add-user`` and
``grant`` are the admin's recipe for a team: one user per person, and per experiment who owns it (MANAGE),
who edits it (EDIT: logs runs) and who only reads it (READ: browses the UI, exports leaderboards). They run as
the admin, with ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` set to the admin's credentials.
Passwords are read from a file only its owner can read, or typed at a prompt; never from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from vdr_exp import extras
from vdr_exp.errors import ConfigError, VdrError
from vdr_exp.runs import server_auth


def _serve(args: argparse.Namespace) -> int:
    settings = server_auth.ServerSettings(
        db=args.db,
        artifacts=args.artifacts,
        host=args.host,
        port=args.port,
        folder=args.folder,
        auth_db=args.auth_db,
        admin_username=args.admin_username,
        admin_password_file=args.admin_password_file,
        default_permission=args.default_permission,
        names=args.names,
        allowed_hosts=args.allowed_hosts,
        cors_origins=args.cors_origins,
        workers=args.workers,
    )
    password = server_auth.admin_password(settings)
    server_auth.refuse_open_server(settings, password)
    command = server_auth.server_command(settings, auth=password is not None)
    env = server_auth.server_environment(settings, password)
    if password is None:
        print(f"note: no authentication (HOST={settings.host} is this machine only); see docs/how-to/team-server.md")
    else:
        print(f"basic-auth on: admin user {settings.admin_username!r}, config {env[server_auth.AUTH_CONFIG_ENV]}")
    sys.stdout.flush()
    os.execvpe(command[0], command, env)  # the server replaces this process: signals reach it directly
    return 0  # pragma: no cover


def _new_password(args: argparse.Namespace) -> str:
    if args.password_file:
        return server_auth.private_file_text(Path(args.password_file).expanduser(), "--password-file")
    if not sys.stdin.isatty():
        raise ConfigError(
            f"no password for {args.username!r}: pass --password-file <file, mode 600> or run in a terminal."
        )
    first = getpass.getpass(f"password for {args.username}: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("the two passwords differ; run the command again.")
    return first


def _admin_client(args: argparse.Namespace):  # mlflow's AuthServiceClient, imported late
    """The auth app's client as the admin (credentials from the environment), the server checked first."""
    # optional extra (server): mlflow.server needs the full mlflow package
    from mlflow.server import get_app_client

    from vdr_exp.runs import tracking

    tracking.check_server(args.tracking_uri)
    return get_app_client("basic-auth", tracking_uri=args.tracking_uri)


def _add_user(args: argparse.Namespace) -> int:
    password = _new_password(args)
    if len(password) < 12:
        raise ConfigError(f"the password for {args.username!r} is {len(password)} characters; MLflow needs 12 or more.")
    client = _admin_client(args)
    client.create_user(args.username, password)
    if args.admin:
        client.update_user_admin(args.username, True)
    print(f"created user {args.username!r}" + (" (admin)" if args.admin else ""))
    return 0


def _grant(args: argparse.Namespace) -> int:
    """Give a user a role in an experiment; the experiment is created (as the UI's runs table) when missing."""
    # MLflow and Hydra (vdr_exp.config) load only when a subcommand runs: --help stays instant
    from mlflow.tracking import MlflowClient

    from vdr_exp.config import TrackingConfig
    from vdr_exp.runs import tracking

    permission = server_auth.ROLES[args.role]
    client = _admin_client(args)
    track = TrackingConfig(name="team", tracking_uri=args.tracking_uri, experiment_name=args.experiment)
    experiment_id = tracking.ensure_experiment(MlflowClient(tracking_uri=args.tracking_uri), track)
    client.grant_user_permission(args.username, "experiment", experiment_id, permission)
    print(f"{args.username!r} is {args.role} ({permission}) of experiment {args.experiment!r} (id {experiment_id})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vdr_exp.server", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the tracking server (what `make server` runs)")
    serve.add_argument("--db", required=True, help="tracking database URI (sqlite:///..., postgresql+psycopg://...)")
    serve.add_argument("--artifacts", required=True, help="artifact folder or bucket, on the server's side")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--folder", type=Path, default=Path("outputs/server"), help="the server's own files (0700)")
    serve.add_argument("--auth-db", default="", help="users' database (default: beside --db)")
    serve.add_argument("--admin-username", default=os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin")
    serve.add_argument("--admin-password-file", default="", help=f"instead of ${server_auth.ADMIN_PASSWORD_ENV}")
    serve.add_argument("--default-permission", default="READ", help="what users may do where not granted more")
    serve.add_argument("--names", default="", help="host names clients use, comma-separated (allowed hosts, CORS)")
    serve.add_argument("--allowed-hosts", default="", help="mlflow server --allowed-hosts (default: from --names)")
    serve.add_argument("--cors-origins", default="", help="mlflow server --cors-allowed-origins (default: --names)")
    serve.add_argument("--workers", type=int, default=None)
    serve.set_defaults(run=_serve)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
    add = commands.add_parser("add-user", help="create a user (as the admin)")
    add.add_argument("username")
    add.add_argument("--password-file", help="a file (mode 600) holding the new password; default: a prompt")
    add.add_argument("--admin", action="store_true", help="make the user an admin too")
    add.set_defaults(run=_add_user)
    grant = commands.add_parser("grant", help="give a user a role in an experiment (as the admin)")
    grant.add_argument("username")
    grant.add_argument("--experiment", required=True)
    grant.add_argument("--role", required=True, choices=sorted(server_auth.ROLES))
    grant.set_defaults(run=_grant)
    for sub in (add, grant):
        sub.add_argument("--tracking-uri", default=uri, help=f"the server (default: $MLFLOW_TRACKING_URI or {uri})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # mlflow.server imports starlette's deprecated WSGI middleware; its warning is MLflow's business, not the admin's.
    warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
    try:
        extras.require("the tracking server (mlflow server, its auth app)", "server", "flask")  # not in mlflow-skinny
        return args.run(args)
    except VdrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # an MLflow answer (an existing user, no such user): one line, not a traceback
        # MLflow loads only when a subcommand runs: --help stays instant
        from mlflow.exceptions import MlflowException

        if not isinstance(error, MlflowException):
            raise
        reason = error.message.split(". Error: ")[0].splitlines()[0]  # not the SQL, which holds a password hash
        print(f"error: the server refused `{args.command}`: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
