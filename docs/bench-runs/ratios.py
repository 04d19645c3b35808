"""Per-round ratios (PyTorch's time / loopgrad's) from side-by-side.sh's output; a '#' line is a comment.

The loopgrad program counted is the last of LGS in each round (`target/release/loopgrad` -> `loopgrad`, or
`loopgrad-wide` in the committed 2026-12-07 file); `loopgrad-base`, when present, is compared with it."""
import json, sys

times = {}  # (file, round, configuration, dtype, program) -> ms
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("#"):
            continue
        r, cfg, dt, prog, js = line.split(" ", 4)
        prog = "loopgrad-wide" if prog == "loopgrad" else prog
        d = json.loads(js)
        times[(path, r, cfg, dt, prog)] = d.get("step_ms") or d.get("eval_ms") or d.get("ms")
rounds = sorted({k[:2] for k in times})
for cfg in ["main", "pmlp", "patt", "maineval"]:
    print(cfg)
    for fr in rounds:
        g = lambda dt, prog: times.get(fr + (cfg, dt, prog))
        w32, wb, p32, pb = g("f32", "loopgrad-wide"), g("bf16", "loopgrad-wide"), g("f32", "torch"), g("bf16", "torch")
        if None in (w32, wb, p32, pb):
            continue  # this round did not run the configuration
        s = f"  round {fr[1]}: bf16 vs PyTorch bf16 {pb / wb:.2f}x, bf16 vs PyTorch f32 {p32 / wb:.2f}x, f32 vs PyTorch f32 {p32 / w32:.2f}x"
        b32, bb = g("f32", "loopgrad-base"), g("bf16", "loopgrad-base")
        if b32:
            s += f"; vs loopgrad-base: f32 {b32 / w32:.3f}x, bf16 {bb / wb:.3f}x"
        print(s)
