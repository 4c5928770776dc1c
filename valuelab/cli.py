"""The `valuelab` command."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from valuelab.errors import InputError, ValuelabError


def add_model_options(parser: argparse.ArgumentParser, *specs: str) -> None:
    """Options shared by every command that talks to a model; `specs` names its model positionals."""
    for name in specs or ("model",):
        parser.add_argument(name, help="model spec: smollm2, hf:ORG/NAME, vllm:ORG/NAME, openai:MODEL, "
                            "synthetic:SEED (MODEL+adapter=DIR for a LoRA adapter)")
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY)")
    parser.add_argument("--concurrency", type=at_least_one, metavar="MAX",
                        help="most requests in flight to an OpenAI-compatible server (default 256); the client "
                        "adapts up to it, backing off on 429s")
    parser.add_argument("--store", type=Path, help="response store (default $VALUELAB_STORE or ~/.cache/valuelab)")
    parser.add_argument("--mode", choices=["logprob", "sample"], default="logprob",
                        help="next-token log-probabilities (default) or sampled answers")
    parser.add_argument("--samples", type=int, default=10, help="samples per prompt in sample mode")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature in sample mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu or cuda (local backends)")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="compute missing answers in this process or on Ray actors (pip install 'valuelab[ray]')")
    parser.add_argument("--ray-actors", type=int, default=2, help="Ray actors, each holding the model")
    parser.add_argument("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--ray-gpus", type=float, default=0, help="GPUs each Ray actor reserves")
    parser.add_argument("--system", metavar="TEXT|@FILE",
                        help="system prompt (or persona) for every question that has none of its own; part of the "
                        "store key")


def at_least_one(text: str) -> int:
    """An integer of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def system_prompt(value: str | None) -> str | None:
    """`--system TEXT`, or `--system @FILE` to read it from a file (`@DIR`: a prompt-steering folder's
    system.txt, written by `valuelab control steer --method prompt`)."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    if path.is_dir():
        path = path / "system.txt"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the system prompt file: {exc.strerror}", file=str(path)) from None


def open_model(args: argparse.Namespace, spec: str | None = None, store=None):
    """The backend named by the arguments (or `spec`), seen through the store (or `store`)."""
    from valuelab.models import load_model
    from valuelab.store import Store, StoredModel, default_store_path

    spec = spec or args.model
    options = {"base_url": args.base_url, "api_key_env": args.api_key_env, "concurrency": args.concurrency,
               "device": args.device}
    backend = load_model(spec, **options)
    executor = None
    if args.executor == "ray":
        from valuelab.executor import RayExecutor

        executor = RayExecutor(spec, options, actors=args.ray_actors, address=args.ray_address,
                               num_gpus=args.ray_gpus)
    return StoredModel(backend, store or Store(args.store or default_store_path()), mode=args.mode,
                       n_samples=args.samples, temperature=args.temperature, seed=args.seed, executor=executor,
                       system=system_prompt(args.system))


def report_store_use(model) -> None:
    """What the run cost: prompts asked of the model and answers reused from the store, requests sent (retries
    and probes included) and samples drawn."""
    counts = model.counts
    samples = f", {counts.samples} samples" if counts.samples else ""
    print(f"[{model.mode} mode; {counts.asked} prompts asked, {counts.reused} from the store {model.store.path}; "
          f"{counts.requests} requests{samples}]", file=sys.stderr)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Pairs from a CSV with columns `first,second`."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"first", "second"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {', '.join(sorted(missing))}; expected first,second",
                             file=str(path), line=1)
        pairs = []
        for line, row in enumerate(reader, start=2):
            for column in ("first", "second"):
                if not (row[column] or "").strip():
                    raise InputError("empty outcome text", file=str(path), line=line, field=column)
            pairs.append((row["first"], row["second"]))
    return pairs


def cmd_models(args: argparse.Namespace) -> int:
    from valuelab.models import available_backends

    for b in available_backends():
        mark = "yes" if b["available"] else "no "
        print(f"{b['prefix']:<10} {mark}  {b['description']}")
    return 0


def cmd_prefer(args: argparse.Namespace) -> int:
    from valuelab.elicit.pairwise import prefer_pairs, preferences_frame

    if args.pairs:
        pairs = read_pairs(args.pairs)
    elif len(args.outcomes) == 2:
        pairs = [tuple(args.outcomes)]
    else:
        raise InputError("give two outcomes (valuelab prefer MODEL \"first\" \"second\") or --pairs FILE.csv")
    model = open_model(args)
    preferences = prefer_pairs(model, pairs, template=args.template)
    for p in preferences:
        print(f"first : {p.first}\nsecond: {p.second}")
        for name, r in (("first as A ", p.forward), ("second as A", p.backward)):
            flag = "  LOW MASS" if r.low_mass else ""
            refused = f"  refusals={r.n_refusal}" if r.mode == "sample" else ""
            print(f"  {name}: P(A)={r.p_a:.4f}  P(B)={r.p_b:.4f}  mass={r.mass:.4f}{refused}{flag}")
        print(f"  P(first > second) = {p.p_first:.4f}   position bias toward A = {p.position_bias:+.4f}\n")
    if args.out:
        preferences_frame(preferences).to_csv(args.out, index=False)
    report_store_use(model)
    return 0


def cmd_utilities(args: argparse.Namespace) -> int:
    from valuelab.elicit.outcomes import load_outcomes
    from valuelab.fit.utilities import elicit_utilities
    from valuelab.manifest import build_manifest
    from valuelab.stats import write_json

    outcomes = load_outcomes(args.outcomes)
    model = open_model(args)
    started = time.time()
    result = elicit_utilities(model, outcomes, template=args.template, budget=args.budget, seed=args.seed,
                              holdout_pairs=args.holdout_pairs, bootstrap_samples=args.bootstrap,
                              selector=args.selector, text_check=args.text_check, family=args.family)
    manifest = build_manifest(model, command=" ".join(sys.argv), seed=args.seed,
                              extra={"outcomes": str(args.outcomes), "template": args.template,
                                     "wall_seconds": round(time.time() - started, 2)})
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in ("id", "text", "category", "mean", "variance", "mean_lo", "mean_hi", "mean_sd")
               if c in result.utilities]
    result.utilities[columns].to_csv(out / "utilities.csv", index=False)
    result.preferences.to_csv(out / "preferences.csv", index=False)
    write_json(out / "metrics.json", result.metrics)
    write_json(out / "manifest.json", manifest)
    m = result.metrics
    held = (f"held-out accuracy {m['heldout_accuracy']:.3f}, log-loss {m['heldout_log_loss']:.3f}; "
            if "heldout_accuracy" in m else "")
    text = (f", log-prob vs text agreement {m['text_agreement']:.2f} over {m['text_checked']} prompts"
            if m.get("text_agreement") is not None else "")
    print(f"{m['n_outcomes']} outcomes, {m['pairs_trained']} pairs fitted; {held}average confidence "
          f"{m['average_confidence']:.3f}, position bias {m['position_bias']:+.3f}{text}; wrote {out}/utilities.csv, "
          f"preferences.csv, metrics.json, manifest.json")
    report_store_use(model)
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from valuelab.fit import fit_csv

    summary = fit_csv(args.prefs, args.out, family=args.family, device=args.device, bootstrap=args.bootstrap,
                      seed=args.seed, holdout_pairs=args.holdout_pairs, per_component=args.per_component)
    print(f"fitted {summary['items']} items on {summary['pairs']} pairs ({args.family}); wrote {args.out}")
    for k, fitted in enumerate(summary.get("components", [summary])):
        where = f"component {k}: " if "components" in summary else ""
        print(f"{where}log-likelihood {fitted['log_likelihood']:.4f} after {fitted['iterations']} iterations, "
              + ("converged" if fitted["converged"] else "NOT converged (the utilities may be off)"))
    if "holdout" in summary:
        h = summary["holdout"]
        interval = summary.get("holdout_ci", {}).get("accuracy")
        ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        print(f"held-out accuracy {h['accuracy']:.3f}{ci}, log-loss {h['log_loss']:.3f}, "
              f"calibration error {h['calibration_error']:.3f}, average confidence {h['avg_confidence']:.3f} "
              f"over {h['n_pairs']} pairs")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from valuelab.fit import simulate_csv

    summary = simulate_csv(args.items, args.pairs, args.samples, args.seed, args.out, truth=args.truth)
    print(f"{summary['comparisons']} comparisons over {summary['pairs']} pairs of {args.items} items; "
          f"wrote {args.out}" + (f" and {args.truth}" if args.truth else ""))
    return 0


def write_analysis(out: Path, name: str, result) -> None:
    """NAME.json (every number), NAME.csv (the first table) and NAME.svg (the figure) of a `Result` in `out`."""
    from valuelab.report import to_svg
    from valuelab.stats import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", result.to_dict())
    next(iter(result.tables.values()), result.to_frame()).to_csv(out / f"{name}.csv", index=False)
    if result.figures:
        (out / f"{name}.svg").write_text(to_svg(result.figures[0][1]), encoding="utf-8")


def analysis_parser(spec) -> argparse.ArgumentParser:
    """`valuelab analyze NAME MODEL`: the model options and exactly the options analysis NAME declares."""
    parser = argparse.ArgumentParser(prog=f"valuelab analyze {spec.name}",
                                     description=f"{spec.title}: {spec.question} (--budget counts {spec.budget})")
    add_model_options(parser)
    parser.add_argument("--out", type=Path, help=f"folder for {spec.name}.json, .csv and .svg")
    for option in spec.options:
        parser.add_argument(option.flag, dest=option.name, type=option.type, choices=option.choices,
                            action="append" if option.multiple else "store", help=option.help)
    return parser


def run_and_write(args: argparse.Namespace, name: str, options: dict, file_name: str) -> int:
    """Run analysis `name` with `options` on the arguments' model, print its headline, write its files."""
    from valuelab.analyses import run_analysis

    model = open_model(args)
    result = run_analysis(name, model, seed=args.seed, **{k: v for k, v in options.items() if v is not None})
    headline = result.headline
    print(json.dumps({"analysis": name, "headline": headline.name if headline else None,
                      "value": headline.to_dict() if headline else None}, default=float))
    if args.out:
        write_analysis(args.out, file_name, result)
        print(f"wrote {args.out}/{file_name}.json, .csv, .svg")
    report_store_use(model)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from valuelab.analyses import get

    spec = get(args.name)
    parsed, extra = analysis_parser(spec).parse_known_args(args.rest)
    if extra:
        offered = ", ".join(o.flag for o in spec.options) or "none"
        raise InputError(f"analysis {spec.name!r} takes no option {' '.join(extra)} (its options: {offered}; "
                         f"`valuelab analyze {spec.name} --help`)")
    options = {o.name: getattr(parsed, o.name) for o in spec.options}
    return run_and_write(parsed, spec.name, options, spec.name)


def cmd_dilemmas(args: argparse.Namespace) -> int:
    if args.principles:
        return dilemmas_under_principles(args)
    return run_and_write(args, "dilemmas", {"set_name": args.set, "limit": args.limit}, f"dilemmas-{args.set}")


def dilemmas_under_principles(args: argparse.Namespace) -> int:
    """`valuelab dilemmas MODEL --principles FILE`: the unsteered run's files, then principles.csv and .json."""
    from valuelab.control.principles import load_principles, principle_shifts

    principles = load_principles(args.principles)  # a malformed file fails before any model call
    model = open_model(args)
    result = principle_shifts(model, principles, args.set, limit=args.limit, seed=args.seed)
    write_analysis(args.out, f"dilemmas-{args.set}", result.unsteered)
    paths = result.write(args.out)
    summary = result.to_dict()
    for p in principles:
        print(f"{p.id}: mean |shift| {summary['mean_abs_shift'][p.id]:.1f} points of selected-minus-neglected; "
              f"{summary['tags_moved'][p.id]} of {summary['tags_scored']} value tags moved beyond their interval")
    print(f"wrote {args.out}/dilemmas-{args.set}.json, .csv, .svg (unsteered), {', '.join(str(p) for p in paths)}")
    report_store_use(model)
    return 0


def cmd_survey(args: argparse.Namespace) -> int:
    return run_and_write(args, "survey", {"instrument": args.instrument, "limit": args.limit},
                         f"survey-{args.instrument}")


def cmd_audit(args: argparse.Namespace) -> int:
    from valuelab.audits import run_audit

    if args.store is None:  # the audit's answers live beside its report, so a rerun resumes from them
        args.store = args.out / "store.sqlite"
    model = open_model(args)
    audit = run_audit(model, suite=args.suite, seed=args.seed, outcomes=args.outcomes, only=args.only)
    paths = audit.write(args.out)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    report_store_use(model)
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from valuelab.estimate import estimate_frame

    frame = estimate_frame(args.suite, args.model, outcomes=args.outcomes, mode=args.mode, n_samples=args.samples,
                           prompts_per_second=args.rate, measure=args.measure)
    print(frame.to_string(index=False))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from valuelab.report import compare_reports

    compare_reports(args.dirs, args.out)
    print(f"wrote {args.out}/report.html, report.pdf and results.json")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from valuelab.report.diff import diff_sentences, write_diff

    diff, broken = write_diff(args.before, args.after, args.out, fail_on=args.fail_on, pdf=not args.no_pdf,
                              n_boot=args.n_boot)
    for sentence in diff_sentences(diff):
        print(sentence)
    print(f"wrote {args.out}/report.html{'' if args.no_pdf else ', report.pdf'}, results.json and diff.json")
    for line in broken:
        print(f"valuelab diff: rule broken: {line}", file=sys.stderr)
    return 1 if broken else 0


def cmd_control_assembly(args: argparse.Namespace) -> int:
    from valuelab.control import build_assembly, from_votes

    if args.votes:  # a real assembly's votes: nobody is simulated and the model is not asked
        result = from_votes(args.votes, args.outcomes, holdout_outcomes=args.holdout_outcomes, seed=args.seed)
        model = None
    else:
        model = open_model(args)
        result = build_assembly(model, size=args.size, outcomes=args.outcomes, budget=args.budget, seed=args.seed,
                                population=args.population, template=args.template,
                                holdout_outcomes=args.holdout_outcomes)
    result.write(args.out)
    info = result.to_dict()
    print(f"assembly of {info['size'] or 'voters from ' + str(args.votes)} over {info['n_outcomes']} outcomes: "
          f"{info['n_train_pairs']} training and {info['n_heldout_pairs']} held-out pairs "
          f"({info['n_heldout_outcomes']} outcomes held out), mean majority share {info['mean_majority_share']:.3f}; "
          f"wrote {args.out}/targets.csv, utilities.csv, votes.csv, manifest.json")
    if model is not None:
        report_store_use(model)
    return 0


def cmd_control_finetune(args: argparse.Namespace) -> int:
    from valuelab.control import finetune

    options = {"lr": args.lr} if args.lr is not None else {}
    result = finetune(args.model, args.target, objective=args.objective, out=args.out, steps=args.steps,
                      seed=args.seed, batch_size=args.batch_size, rank=args.rank, layers=args.layers,
                      device=args.device, **options)
    info = result.to_dict()
    print(f"{args.objective}: {info['steps']} steps in {info['seconds']:.1f} s ({info['seconds_per_step']:.2f} s/step, "
          f"peak {info['peak_memory_mb']:.0f} MB), loss {info['first_loss']:.4f} -> {info['last_loss']:.4f}; "
          f"wrote {args.out}\nload it as: {result.spec}")
    return 0


def cmd_control_evaluate(args: argparse.Namespace) -> int:
    from valuelab.control import evaluate
    from valuelab.control.evaluate import build_seconds, report
    from valuelab.report import write_report
    from valuelab.store import Store, default_store_path

    store = Store(args.store or default_store_path())
    base = open_model(args, args.base, store)
    if not args.tuned and not args.method:
        raise InputError("give the tuned model (control evaluate BASE TUNED) or --method NAME SPEC")
    methods = ([(None, args.tuned)] if args.tuned else []) + [tuple(m) for m in args.method or []]
    tuned, build = {}, {"base": build_seconds(args.base, args.system)}
    for name, spec in methods:  # SPEC @FILE or @DIR: the base model under that system prompt
        name = name or "after"
        tuned[name] = (base.view(system=system_prompt(spec)) if spec.startswith("@")
                       else open_model(args, spec, store))
        build[name] = build_seconds(None, spec) if spec.startswith("@") else build_seconds(spec)
    if list(tuned) == ["after"]:
        tuned, build = tuned["after"], {"before": build["base"], "after": build["after"]}
    result = evaluate(base, tuned, args.target, political_budget=args.political_budget,
                      side_effects=not args.no_side_effects, seed=args.seed, build=build)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_report(report(result), args.out)
    result.metrics.to_csv(args.out / "control.csv", index=False)
    result.pairs.to_csv(args.out / "pairs.csv", index=False)
    print(result.metrics.to_string(index=False))
    result.summary().to_csv(args.out / "methods.csv", index=False)
    print(f"wrote {', '.join(str(p) for p in paths.values())}, {args.out}/control.csv, methods.csv, pairs.csv")
    return 0


def cmd_control_steer(args: argparse.Namespace) -> int:
    from valuelab.control.steer import steer

    result = steer(args.model, args.target, method=args.method, out=args.out, system=system_prompt(args.system),
                   vector=args.vector, layers=args.layers, strengths=args.strengths, steps=args.steps,
                   seed=args.seed, device=args.device)
    if args.method == "prompt":
        print(f"wrote {args.out}/system.txt and steer.json in {result.build_seconds:.2f} s; use it with "
              f"--system @{args.out}\n\n{result.system}")
    else:
        info = result.to_dict()
        chosen = (f"{info['steps']} Adam steps" if args.vector == "fitted"
                  else f"{info['relative_strength']:g} of the activation norm")
        print(f"{info['n_training_pairs']} training pairs; {args.vector} vector at layer {info['layer']}, strength "
              f"{info['strength']:.4g} ({chosen}) "
              f"(validation agreement {info['validation_agreement']:.3f}, unsteered "
              f"{info['validation_agreement_unsteered']:.3f}); built in {result.build_seconds:.1f} s; wrote "
              f"{args.out}/vectors.safetensors, steer.json, selection.csv\nload it as: {result.spec}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from valuelab.fit.families import FAMILIES
    from valuelab.prompts import DEFAULT_TEMPLATE, PAIRWISE_TEMPLATES

    parser = argparse.ArgumentParser(prog="valuelab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="backends and embedded models available here")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("prefer", help="forced choice between two outcomes, both orders, debiased")
    add_model_options(p)
    p.add_argument("outcomes", nargs="*", help="the two outcomes")
    p.add_argument("--pairs", type=Path, help="CSV with columns first,second (many pairs)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, choices=sorted(PAIRWISE_TEMPLATES))
    p.add_argument("--out", type=Path, help="write one row per pair to this CSV")
    p.set_defaults(func=cmd_prefer)

    p = sub.add_parser("utilities", help="elicit and fit utilities over an outcome set")
    add_model_options(p)
    p.add_argument("--outcomes", default="quick", help="built-in set (quick, core) or a JSONL/CSV/JSON file")
    p.add_argument("--out", type=Path, required=True, help="folder for utilities.csv, preferences.csv, metrics.json")
    p.add_argument("--budget", type=int, help="training pairs to ask (default 2·N·log2 N)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, choices=sorted(PAIRWISE_TEMPLATES))
    p.add_argument("--holdout-pairs", type=float, default=0.05, help="share of all pairs held out for scoring")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for utility intervals")
    p.add_argument("--selector", default="information-gain", choices=["information-gain", "reference"])
    p.add_argument("--text-check", type=int, default=16,
                   help="prompts also answered in free text, to check the log-prob answer is what the model writes")

    p.add_argument("--family", default="thurstonian", choices=FAMILIES, help="likelihood family of the fit")
    p.set_defaults(func=cmd_utilities)

    p = sub.add_parser("fit", help="fit utilities to a CSV of preferences (item_a,item_b,wins_a,wins_b)")
    p.add_argument("prefs", type=Path, help="PREFS.csv; counts may be fractional")
    p.add_argument("--out", type=Path, required=True, help="UTILS.csv to write (item,mean,variance[,mean_lo,mean_hi])")
    p.add_argument("--family", default="thurstonian", choices=FAMILIES, help="likelihood family of the fit")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for intervals")
    p.add_argument("--holdout-pairs", type=float, help="fraction of pairs held out to report accuracy and log-loss")
    p.add_argument("--per-component", action="store_true",
                   help="fit each connected component of a disconnected comparison graph on its own scale")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("simulate", help="draw preferences from a Thurstonian agent with known utilities")
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--pairs", type=int, required=True)
    p.add_argument("--samples", type=int, default=10, help="comparisons per pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="PREFS.csv to write")
    p.add_argument("--truth", type=Path, help="also write the true utilities here")
    p.set_defaults(func=cmd_simulate)

    from valuelab.analyses import REGISTRY

    p = sub.add_parser("analyze", help="run one analysis: " + ", ".join(REGISTRY), add_help=False,
                       usage="valuelab analyze NAME MODEL [options]   (valuelab analyze NAME --help: its options)")
    p.add_argument("name", choices=list(REGISTRY), metavar="NAME", help=", ".join(REGISTRY))
    p.add_argument("rest", nargs=argparse.REMAINDER, help="MODEL and the analysis's options")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("dilemmas", help="forced choices over a dilemma set, scored on value frameworks")
    add_model_options(p)
    p.add_argument("--set", default="everyday", help="everyday, high-stakes, all, or a JSONL/CSV file")
    p.add_argument("--limit", type=int, help="ask only this many dilemmas (a seeded sample)")
    p.add_argument("--principles", type=Path, metavar="FILE",
                   help="YAML or text file of principles: ask every dilemma under each as a system prompt and "
                   "report how far each value moved (principles.csv)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_dilemmas)

    p = sub.add_parser("survey", help="a survey instrument, Likert items forward and reversed")
    add_model_options(p)
    p.add_argument("--instrument", default="schwartz", help="schwartz, mft, wvs, or an instrument YAML")
    p.add_argument("--limit", type=int, help="ask only this many items (a seeded sample)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_survey)

    from valuelab.analyses.suites import SUITES

    p = sub.add_parser("audit", help="run an audit suite and write report.html, report.pdf and results.json")
    add_model_options(p)
    p.add_argument("--suite", default="quick", choices=list(SUITES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--outcomes", help="outcome set for the utility stages (default: quick or core by suite)")
    p.add_argument("--only", type=lambda s: s.split(","), metavar="KEY,...",
                   help="run only these stages of the suite (section keys; the utility ranking always runs)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("estimate", help="prompts, tokens and time a planned audit will cost, before it runs")
    p.add_argument("model", help="model spec of the planned audit (its tokenizer counts the tokens)")
    p.add_argument("--suite", default="quick", choices=list(SUITES))
    p.add_argument("--outcomes", help="outcome set for the utility stages")
    p.add_argument("--mode", choices=["logprob", "sample"], default="logprob")
    p.add_argument("--samples", type=int, default=10, help="samples per prompt in sample mode")
    p.add_argument("--rate", type=float, help="prompts per second, to estimate time")
    p.add_argument("--measure", type=int, default=0, help="time this many planned prompts on the model instead")
    p.set_defaults(func=cmd_estimate)

    control = sub.add_parser("control", help="utility control: assembly targets, LoRA fine-tuning, evaluation")
    steps = control.add_subparsers(dest="step", required=True)
    p = steps.add_parser("assembly", help="simulate a citizen assembly over an outcome set and fit its targets")
    add_model_options(p)
    p.add_argument("--size", type=int, default=6, help="members (personas sampled from the population)")
    p.add_argument("--outcomes", default="quick", help="built-in set (quick, core) or a JSONL/CSV/JSON file")
    p.add_argument("--budget", type=int, help="pairs every member answers (default: a connected graph, ~N·log2 N)")
    p.add_argument("--holdout-outcomes", type=float, default=0.25, help="share of outcomes held out of training")
    p.add_argument("--population", type=Path, help="YAML of marginals (default: cited US figures)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, choices=sorted(PAIRWISE_TEMPLATES))
    p.add_argument("--votes", type=Path, help="a real assembly's votes (item_a,item_b,wins_a,wins_b) instead")
    p.add_argument("--out", type=Path, required=True, help="assembly folder (the target for finetune/evaluate)")
    p.set_defaults(func=cmd_control_assembly)

    p = steps.add_parser("finetune", help="train a LoRA adapter toward an assembly's targets")
    p.add_argument("model", help="a transformers model: smollm2, hf:ORG/NAME or hf:/path")
    p.add_argument("--target", type=Path, required=True, help="assembly folder written by `control assembly`")
    p.add_argument("--objective", default="sft", help="sft (majority choice), dpo (both orders) or match "
                   "(the assembly's vote share)")
    p.add_argument("--out", type=Path, required=True, help="adapter folder to write")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, help="learning rate (default: finetune's, 1e-2 for LoRA on CPU)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--layers", type=int, help="adapt only the top this many layers (faster on CPU)")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_control_finetune)

    p = steps.add_parser("steer", help="steer a model toward an assembly: a system prompt or activation vectors")
    p.add_argument("model", nargs="?", help="a transformers model for --method activation: smollm2, hf:ORG/NAME")
    p.add_argument("--target", type=Path, required=True, help="assembly folder written by `control assembly`")
    p.add_argument("--method", choices=["prompt", "activation"], default="activation")
    p.add_argument("--system", metavar="TEXT|@FILE", help="prompt steering: your own system prompt instead of one "
                   "written from the targets")
    p.add_argument("--vector", choices=["fitted", "mean-difference"], default="fitted",
                   help="activation: fit the vector to the training pairs' majority labels (default), or take "
                   "the mean activation difference between preferred and rejected answers")
    p.add_argument("--layers", type=int, nargs="+", help="activation: decoder layers to try (default: at 25, 40 "
                   "and 55 %% of the depth)")
    p.add_argument("--steps", type=int, nargs="+", help="fitted vector: numbers of Adam steps to try (default "
                   "10 20 40)")
    p.add_argument("--strengths", type=float, nargs="+", help="mean-difference vector: strengths to try, as "
                   "shares of the layer's activation norm (default 0.1 0.2 0.4)")
    p.add_argument("--out", type=Path, required=True, help="steering folder to write")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_control_steer)

    p = steps.add_parser("evaluate", help="held-out agreement, utilities, politics and side effects, by method")
    add_model_options(p, "base")  # base: the model before (smollm2); tuned: after (smollm2+adapter=DIR)
    p.add_argument("tuned", nargs="?", help="the tuned model (smollm2+adapter=DIR, smollm2+steer=DIR)")
    p.add_argument("--method", nargs=2, action="append", metavar=("NAME", "SPEC"),
                   help="one more method to compare, e.g. --method sft smollm2+adapter=DIR, --method prompt @STEER "
                   "(@FILE or @DIR: the base model with that system prompt); repeatable")
    p.add_argument("--target", type=Path, required=True, help="assembly folder written by `control assembly`")
    p.add_argument("--out", type=Path, required=True, help="folder for report.html, report.pdf, results.json")
    p.add_argument("--political-budget", type=int, default=0,
                   help="policy pairs for the political position before/after (0 skips it)")
    p.add_argument("--no-side-effects", action="store_true", help="skip the perplexity of the fixed text")
    p.set_defaults(func=cmd_control_evaluate)

    p = sub.add_parser("compare", help="a comparison report over several audit folders")
    p.add_argument("dirs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("diff", help="what changed between two audits (or utility runs): intervals, flags, CI gate")
    p.add_argument("before", type=Path, help="the baseline: an audit folder, or a utilities CSV")
    p.add_argument("after", type=Path, help="the new run, of the same suite and items")
    p.add_argument("--out", type=Path, required=True, help="folder for the report, results.json and diff.json")
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help='exit 1 when the rule holds, e.g. "political-values.economic_lean: abs_change > 0.1" or '
                        '"outcomes: flagged > 5" (repeatable)')
    p.add_argument("--n-boot", type=int, default=1000, help="paired bootstrap resamples")
    p.add_argument("--no-pdf", action="store_true", help="skip report.pdf")
    p.set_defaults(func=cmd_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot place positionals that come after options (`prefer MODEL --base-url URL "a" "b"`) when the
    # positional list is variable; hand such leftovers to the command's outcome list.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "outcomes") or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.outcomes += extra
    try:
        return args.func(args)
    except ValuelabError as exc:
        print(f"valuelab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("valuelab: interrupted; what was answered is in the store, run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
