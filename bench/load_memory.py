"""Peak memory of loading a teacher, against the size of the model it loads.

`load_model` reads one tensor at a time from the memory-mapped safetensors and converts it as
it comes, so loading should need the model's own size and little more. Each case runs in a
fresh process (peak RSS is per process): the real SmolLM2-135M in fp32, the same weights
saved in bf16 and loaded in their own dtype (`dtype=None`) and upcast to fp32; and, for
comparison, reading the whole file first and converting after (what loading did before).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import write_results

CASES = {  # name -> (file dtype, load dtype, how)
    "fp32 file, fp32 model": ("float32", "float32", "lazy"),
    "bf16 file, bf16 model (dtype=None)": ("bfloat16", None, "lazy"),
    "bf16 file, fp32 model": ("bfloat16", "float32", "lazy"),
    "bf16 file, fp32 model, whole file read first": ("bfloat16", "float32", "whole"),
}


def status_mb(field: str) -> float:
    """A field of /proc/self/status in MB: VmRSS (now), VmHWM (the peak; unlike getrusage's, it starts afresh
    at exec), RssAnon and RssFile (resident memory of the process's own and of mapped files' pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def one_case(folder: str, dtype_name: str | None, how: str) -> dict:
    """Runs in its own process: load once, report the peak RSS above what the imports left."""
    from safetensors.torch import load_file

    from headstart.model import build_model, load_model
    from headstart.model.checkpoint import decoder_config, read_config
    from headstart.model.families import FAMILIES

    dtype = None if dtype_name is None else getattr(torch, dtype_name)
    before = status_mb("VmRSS")
    if how == "lazy":
        model = load_model(folder, dtype=dtype)
    else:
        cfg = decoder_config(read_config(Path(folder)))
        weights = {}
        for f in sorted(Path(folder).glob("*.safetensors")):
            weights |= load_file(f)
        model = build_model(cfg, FAMILIES[cfg.family].to_ours(weights, cfg), dtype)
        del weights
    peak = status_mb("VmHWM")
    size = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    return {"model_mb": size, "peak_above_imports_mb": peak - before,
            "anonymous_after_mb": status_mb("RssAnon"), "file_backed_after_mb": status_mb("RssFile")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="smollm2-135m")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # internal: folder, dtype, how
    args = parser.parse_args()
    if args.case:
        folder, dtype_name, how = args.case
        print(json.dumps(one_case(folder, None if dtype_name == "None" else dtype_name, how)))
        return
    from headstart.model import load_model, save_model
    from headstart.model.checkpoint import resolve_model_dir

    source = resolve_model_dir(args.teacher)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"float32": source, "bfloat16": save_model(load_model(source), Path(tmp) / "bf16",
                                                             dtype=torch.bfloat16)}
        for name, (file_dtype, load_dtype, how) in CASES.items():
            out = subprocess.run([sys.executable, __file__, "--case", str(folders[file_dtype]), str(load_dtype), how],
                                 check=True, capture_output=True, text=True).stdout
            row = {"case": name} | json.loads(out.strip().splitlines()[-1])
            row["peak_over_model"] = row["peak_above_imports_mb"] / row["model_mb"]
            rows.append(row)
            print(row, flush=True)
    table = "\n".join(f"| {r['case']} | {r['model_mb']:.0f} | {r['peak_above_imports_mb']:.0f} | "
                      f"{r['peak_over_model']:.2f} | {r['anonymous_after_mb']:.0f} | {r['file_backed_after_mb']:.0f} |"
                      for r in rows)
    write_results("load_memory", {"teacher": args.teacher, "rows": rows}, f"""
Peak resident memory of one load (`load_model`), above what the imports left, each case in a fresh
process, teacher `{args.teacher}`; then the process's resident memory once loaded: its own pages
and pages of mapped files (the checkpoint's, which the kernel can drop and re-read).
A model kept in the file's dtype is the mapped file itself: its pages are read when first used.

| case | model (MB) | peak (MB) | peak / model | own pages after (MB) | file pages after (MB) |
|---|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
