"""``python -m tools.bench``: per learner and size, the seconds and FLOPs of one full update on a fixed synthetic
batch, the achieved GFLOP/s beside this machine's measured matmul peak, and the acting rate; a table on stdout,
everything in a JSON file.

    python -m tools.bench                                   # every learner, small and paper, 3 repeats
    python -m tools.bench --learners dreamer_v3 --sizes small,12m --repeats 5 --out runs/bench/v3.json

Bad input (an unknown learner, size or variant) is one ``error:`` line and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tools.memory import reuse_freed_memory

HA2018_SIZES = ("small", "paper")
VARIANTS = ("fp32", "bf16", "compile")


def learner_sizes() -> dict[str, tuple[str, ...]]:
    from tools.bench.rssm import LEARNERS
    return {**{name: tuple(sizes) for name, (_, sizes) in LEARNERS.items()}, "ha2018": HA2018_SIZES}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", default="dreamer_v3,dreamer_v2,dreamer_v1,planet,ha2018",
                        help="comma-separated: dreamer_v3, dreamer_v2, dreamer_v1, planet, ha2018")
    parser.add_argument("--sizes", default="small,paper", help="comma-separated; a learner skips sizes it lacks "
                        "(dreamer_v3 also has 12m, 12m_image, paper_image)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (the median is kept)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (the first counts the FLOPs)")
    parser.add_argument("--variants", default=None, help="fp32, bf16, compile (default: fp32 on a CPU, all three "
                        "on CUDA)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    parser.add_argument("--act-seconds", type=float, default=1.0, help="seconds per timed acting repeat")
    parser.add_argument("--no-real-env", action="store_true", help="ha2018: skip the real-environment rollout rate")
    parser.add_argument("--back-to-back", action="store_true", help="time the updates one after another and "
                        "measure the matmul rate after them (default: between the timed updates)")
    parser.add_argument("--out", default="runs/bench/bench.json", help="JSON output path")
    return parser.parse_args(argv)


def check(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    sizes_of = learner_sizes()
    learners = [x.strip() for x in args.learners.split(",") if x.strip()]
    sizes = [x.strip() for x in args.sizes.split(",") if x.strip()]
    variants = [x.strip() for x in args.variants.split(",") if x.strip()] if args.variants else []
    for name in learners:
        if name not in sizes_of:
            raise ValueError(f"unknown learner {name!r}; valid: {', '.join(sizes_of)}")
    known = {s for name in learners for s in sizes_of[name]}
    for size in sizes:
        if size not in known:
            raise ValueError(f"unknown size {size!r} for {', '.join(learners)}; valid: {', '.join(sorted(known))}")
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if args.repeats < 1 or args.warmup < 1 or args.threads < 1:
        raise ValueError("--repeats, --warmup and --threads must be at least 1")
    return learners, sizes, variants


def machine(device: str, threads: int) -> dict[str, Any]:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__, "device": device,
            "python": platform.python_version()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def run(args: argparse.Namespace, learners: list[str], sizes: list[str], variants: list[str]) -> dict[str, Any]:
    import torch

    from tools.bench.ha2018 import bench_ha2018
    from tools.bench.measure import matmul_peak, peak_measured
    from tools.bench.rssm import bench_learner

    torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    variants = variants or (["fp32", "bf16", "compile"] if device == "cuda" else ["fp32"])
    sizes_of = learner_sizes()
    report = {"machine": machine(device, args.threads), "load_start": os.getloadavg(), "started": time.time(),
              "peak_measured": peak_measured(args.back_to_back),
              "peaks": [matmul_peak(device=device)], "results": []}
    for learner in learners:
        for size in [s for s in sizes if s in sizes_of[learner]]:
            for variant in variants:
                if learner == "ha2018":
                    if variant != "fp32":
                        continue
                    record = bench_ha2018(size, args.repeats, args.warmup, device, args.act_seconds,
                                          not args.no_real_env, args.back_to_back)
                else:
                    record = bench_learner(learner, size, args.repeats, args.warmup, device, variant,
                                           args.act_seconds, args.back_to_back)
                report["results"].append(record)
                write(report, args.out)  # after every record: a stopped run keeps what it measured
                print(f"done {learner} {size} {variant}", file=sys.stderr, flush=True)
    report["peaks"].append(matmul_peak(device=device))
    report["peak_gflops"] = statistics.median(p["median_gflops"] for p in report["peaks"])
    report["load_end"] = os.getloadavg()
    return report


def write(report: dict[str, Any], path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


def rows(report: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in report["results"]:
        head = [r["learner"], r["size"], r["variant"], r["task"]]
        if r["learner"] == "ha2018":
            params = r["params"]
            for key, name in (("v_update", "V update"), ("m_update", "M update")):
                u = r[key]
                out.append(head + [f"{params[key[0].upper()] / 1e6:.2f}M", name, f"{u['median_s']:.3f}",
                                   f"{u['flops'] / 1e9:.1f}", f"{u['gflops_per_s']:.1f}",
                                   f"{100 * u['peak_fraction']:.0f}% of {u['peak_gflops']:.0f}", ""])
            d = r["dream"]
            out.append(head + ["", f"dream ({d['dreams']} dreams)", "", "", "", "",
                               f"{d['dream_steps_per_s']:.0f} dream steps/s"])
            if "real_env" in r:
                out.append(head + ["", "real env (1 worker)", "", "", "", "",
                                   f"{r['real_env']['steps_per_s']:.1f} env steps/s"])
            continue
        u, a = r["update"], r["act"]
        out.append(head + [f"{r['params'] / 1e6:.2f}M", f"update B{r['batch'][0]} T{r['batch'][1]}",
                           f"{u['median_s']:.3f}", f"{u['flops'] / 1e9:.1f}", f"{u['gflops_per_s']:.1f}",
                           f"{100 * u['peak_fraction']:.0f}% of {u['peak_gflops']:.0f}",
                           f"{a['per_s']:.1f} {a['unit']}"])
    return out


def table(report: dict[str, Any]) -> str:
    header = ["learner", "size", "variant", "task", "params", "what", "median s", "GFLOP", "GFLOP/s", "of peak",
              "acting"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(report)]
    m = report["machine"]
    lines.append(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['threads']} torch thread(s), torch {m['torch']}, "
                 f"device {m['device']}; fp32 matmul ({report['peaks'][0]['n']}^3) {report['peak_gflops']:.1f} GFLOP/s "
                 f"at the start and end (median); 'of peak' divides by the matmul rate measured "
                 f"{report['peak_measured']} (each update's timed repeats); "
                 f"load average {report['load_start'][0]:.2f} at the start, "
                 f"{report['load_end'][0]:.2f} at the end")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    reuse_freed_memory()
    try:
        learners, sizes, variants = check(args)
        report = run(args, learners, sizes, variants)
        write(report, args.out)
    except (ValueError, ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(report))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
