"""The `tts swe` steps on files: preds, eval (the swebench harness or the local grader), run, import."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts.cli.swe.common import load_rows, open_rundir
from tts.cli.swe.executor_flags import uses_ray
from tts.cli.swe.steps import step_pdr
from tts.errors import UsageError


def step_preds(args: argparse.Namespace) -> int:
    from tts.records import Trajectory
    from tts.swe.grade import write_preds
    from tts.swe.pipeline import SWEResult

    rd = open_rundir(args)
    patches: dict[str, str | None] = {}
    for p in sorted((rd.root / "results").glob("*.json")):
        res = rd.load(p, SWEResult)
        patches[res.instance_id] = res.patch
    # Instances with one rollout and no selection (e.g. imported batch output): that rollout.
    unselected = []
    for d in sorted((rd.root / "rollouts").glob("*")):
        files = rd.rollouts_of(d.name)
        t = Trajectory.model_validate_json(files[0].read_text()) if files else None
        iid = (t.task_id if t else None) or d.name
        if len(files) == 1 and t is not None:
            patches.setdefault(iid, t.patch)
        elif len(files) > 1 and iid not in patches:
            unselected.append(f"{iid} ({len(files)} rollouts)")
    if unselected:
        print(f"not predicted, no selection yet: {', '.join(unselected)}; run 'tts swe summarize' and "
              f"'tts swe select' first", file=sys.stderr)
    if not patches:
        raise UsageError(f"nothing to predict in {rd.root}: run 'tts swe select' or 'tts swe pdr' first")
    name = args.model_name or getattr(args, "model", None) or "tts"
    path = write_preds(patches, rd.preds, name)
    print(f"{len(patches)} predictions written to {path}")
    return 0


def eval_here(args: argparse.Namespace) -> int:
    from tts.swe.grade import grade_local_many, read_preds, run_swebench_harness

    rd = open_rundir(args)
    preds_path = Path(args.preds) if args.preds else rd.preds
    run_id = args.run_id or rd.root.resolve().name
    if args.grader == "swebench":
        from tts.swe.docker_probe import require_docker

        if not args.modal:
            require_docker("the swebench harness (--grader swebench)", "--grader local (rows with repo_path and "
                           "test_cmd) or --modal")
        if not preds_path.is_file():
            raise UsageError(f"no predictions at {preds_path}; run 'tts swe preds' first")
        dataset = args.dataset or str(rd.instances)
        if Path(dataset).exists():  # the harness runs inside the run dir
            dataset = str(Path(dataset).resolve())
        return run_swebench_harness(dataset, preds_path, run_id=run_id, split=args.split,
                                    max_workers=args.max_workers, modal=args.modal, cwd=rd.root,
                                    instance_ids=args.instance_ids or ())
    if not preds_path.is_file():
        raise UsageError(f"no predictions at {preds_path}; run 'tts swe preds' first")
    rows = load_rows(args, rd)
    summary = grade_local_many(rows, read_preds(preds_path), run_id=run_id, out_dir=rd.root,
                               max_workers=args.max_workers)
    print(f"resolved {summary['resolved_instances']}/{summary['total_instances']}: "
          f"{', '.join(summary['resolved_ids']) or '-'} (reports under {rd.root / 'logs' / 'run_evaluation' / run_id})")
    return 0


async def step_eval(args: argparse.Namespace) -> int:
    if uses_ray(args):
        from tts.cli.swe.executor_flags import eval_on_ray

        return await eval_on_ray(args, open_rundir(args), load_rows)
    return eval_here(args)


async def step_run(args: argparse.Namespace) -> int:
    if args.grader == "swebench" and not args.modal and not uses_ray(args):
        from tts.swe.docker_probe import require_docker

        require_docker("the swebench harness (--grader swebench)", "--grader local (rows with repo_path and "
                       "test_cmd) or --modal")
    code = await step_pdr(args)
    step_preds(args)
    return await step_eval(args) or code


def step_import(args: argparse.Namespace) -> int:
    from tts.swe.importing import import_runs
    from tts.swe.readers import read_runs

    rd = open_rundir(args)
    trajs = [t for p in args.paths for t in read_runs(p)]  # every file read before anything is written
    report = import_runs(rd, trajs)
    if not report.added and not report.already:
        raise UsageError(f"nothing to import: {'; '.join(report.skipped) or 'no runs found'}; expected saved runs "
                         f"with messages or a patch")
    for w in report.warnings:
        print(f"warning: {w}{' (skipped)' if w in report.skipped else ''}", file=sys.stderr)
    if args.dataset and not rd.instances.is_file():
        load_rows(args, rd)
    elif not args.dataset:  # the tasks as the runs state them, for summaries and the judge
        from tts.swe.importing import instances_of

        rows = instances_of(trajs, rd.load_instances() if rd.instances.is_file() else [])
        if rows:
            rd.save_instances(rows)
    print(report.line(str(rd.root / "rollouts")))
    if args.model_name:
        step_preds(args)
    return 0
