"""The hook commands, light to start (standard library only):

agentplane-hook claude-code|codex            (= agentplane hook ...)
agentplane hooks install --runtime claude-code|codex [--project DIR | --user] [--dry-run]
agentplane hooks uninstall --runtime claude-code|codex [--project DIR | --user] [--dry-run]
agentplane hooks spool                       (what is waiting for the server)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = "usage: agentplane hook claude-code|codex  (reads the hook's JSON on stdin)"


def hook_main(argv: Sequence[str] | None = None) -> int:
    """`agentplane-hook <runtime>`: run one hook. Always 0; prints only the
    Stop hook's decision, when there is one."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        # 0 even so: a runtime reads exit code 2 as "block the tool"
        print(USAGE, file=sys.stderr)
        return 0
    from agentplane_client.hooks.config import HookConfig
    from agentplane_client.hooks.run import run_hook

    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError):
        raw = b""
    result = run_hook(args[0], raw, HookConfig.from_env())
    if result.stdout:
        sys.stdout.write(result.stdout + "\n")
        sys.stdout.flush()
    return 0


def main(argv: Sequence[str]) -> int:
    """`agentplane hook ...` and `agentplane hooks ...` (argv from the command on)."""
    if argv[:1] == ["hook"]:
        return hook_main(argv[1:])
    return hooks_main(argv[1:])


def hooks_main(argv: Sequence[str]) -> int:
    import argparse
    from pathlib import Path

    from agentplane_client.hooks import install as inst

    parser = argparse.ArgumentParser(prog="agentplane hooks", description="Claude Code and Codex hooks.")
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("install", "uninstall"):
        p = sub.add_parser(action, help=f"{action} the hook adapter in a runtime's settings")
        p.add_argument("--runtime", required=True, choices=sorted(inst.EVENTS))
        where = p.add_mutually_exclusive_group()
        where.add_argument("--project", type=Path, metavar="DIR", help="a project (default: this directory)")
        where.add_argument("--user", action="store_true", help="the user's settings, for every project")
        p.add_argument("--dry-run", action="store_true", help="show the change, write nothing")
        if action == "install":
            p.add_argument("--command", help="the hook command (default: agentplane-hook <runtime>)")
    sub.add_parser("spool", help="show the plans waiting in the spool")
    args = parser.parse_args(argv)
    if args.action == "spool":
        return _show_spool()
    project = None if args.user else (args.project or Path.cwd()).resolve()
    path = inst.settings_path(args.runtime, project)
    try:
        if args.action == "install":
            change = inst.install(args.runtime, path, args.command or inst.default_command(args.runtime))
        else:
            change = inst.uninstall(path)
    except ValueError as exc:  # JSONDecodeError included: a settings file we must not overwrite
        print(f"agentplane hooks: {exc}", file=sys.stderr)
        return 1
    if not change.changed:
        print(f"{path}: already {'installed' if args.action == 'install' else 'clean'}, nothing to do")
        return 0
    if args.dry_run:
        print(change.diff(), end="")
        return 0
    inst.write(change)
    print(f"{path}: {args.action}ed agentplane hooks for {args.runtime}")
    return 0


def _show_spool() -> int:
    from agentplane_client.hooks.config import HookConfig
    from agentplane_client.hooks.spool import Spool

    config = HookConfig.from_env()
    plans = Spool(config.spool_dir, config.spool_max_bytes, lambda _: None).read()
    print(f"{config.spool_dir}: {len(plans)} plan(s) waiting")
    for plan in plans:
        print(f"  {plan.get('at')} {plan.get('runtime')} {plan.get('hook')} ({len(plan['steps'])} step(s))")
    return 0
