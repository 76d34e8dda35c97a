"""Ensemble weight fitting time for 10 members × 25,000 rows × 46 classes (issue 4: < 2 s)."""

from __future__ import annotations

from benchmarks._common import machine, write_section
from benchmarks.bench_ensemble_fit import METHODS, make_predictions, time_fit

NAME = "ensemble_fit"


def main(repeats: int = 5) -> str:
    members, rows, classes = 10, 25_000, 46
    predictions, y = make_predictions(members, rows, classes, 0)
    table = []
    for method, make in METHODS.items():
        wall, cpu, loss = time_fit(make, predictions, y, repeats)
        table.append({"method": method, "seconds": wall, "cpu_seconds": cpu, "oof_log_loss": loss})
    lines = "\n".join(f"| {r['method']} | {r['seconds']:.3f} | {r['cpu_seconds']:.3f} | "
                      f"{r['oof_log_loss']:.4f} |" for r in table)
    md = f"""## Ensemble weight fitting time — issue 4

Command: `python benchmarks/run.py ensemble_fit` · {machine()} · synthetic softmax
predictions of {members} members of differing quality × {rows:,} rows × {classes} classes
(float32, as stored in oof.npy), median of {repeats} fits. Target for Nelder-Mead: < 2 s.

| method | seconds (median) | CPU seconds (median) | OOF log loss |
|---|---:|---:|---:|
{lines}
"""
    write_section(NAME, md, {"members": members, "rows": rows, "classes": classes,
                             "results": table, "machine": machine()})
    return md


if __name__ == "__main__":
    print(main())
