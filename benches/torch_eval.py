#!/usr/bin/env python3
"""The 16-step evaluation of `loopgrad bench --eval`, in PyTorch: the model of the reference training-step script
(`../shared/bench/torch_trm.py`, imported from the path given by --ref, so both time the same module), a batch
of random tokens, and N_sup = 16 supervision steps without gradient from the init carry. One "step" here is
the whole 16-step evaluation of the batch.

  python3 benches/torch_eval.py --ref ../shared/bench/torch_trm.py --arch mlp --hidden 512 --batch 8 --steps 3

Prints one JSON line with the keys of torch_trm.py (step_ms = median time of one 16-step evaluation).
"""
import argparse, importlib.util, json, resource, statistics, sys, time

EVAL_STEPS = 16


def load_reference(path):
    spec = importlib.util.spec_from_file_location("torch_trm", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="path to torch_trm.py")
    ap.add_argument("--arch", choices=["mlp", "att"], default="mlp")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--expansion", type=float, default=4.0)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--T", type=int, default=3)
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--seq", type=int, default=81)
    ap.add_argument("--vocab", type=int, default=11)
    ap.add_argument("--prefix", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                    help="bf16: the forward under torch.autocast(cpu, bfloat16), as torch_trm.py --dtype bf16")
    a = ap.parse_args()
    try:
        ref = load_reference(a.ref)
    except (OSError, ImportError) as e:
        sys.exit(f"error: cannot load the reference script {a.ref}: {e}")
    torch = ref.torch
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = ref.Inner(a)
    model.eval()
    params = sum(p.numel() for n_, p in model.named_parameters() if n_ != "puzzle_emb")
    d, pos = a.hidden, a.seq + a.prefix
    tokens = torch.randint(1, a.vocab, (a.batch, a.seq))

    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            y = model.H_init.expand(a.batch, pos, d).clone()
            z = model.L_init.expand(a.batch, pos, d).clone()
            for _ in range(EVAL_STEPS):
                y, z, logits, q_halt = model(y, z, tokens)
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(dt)
    step = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch-eager-eval" + ("-bf16" if a.dtype == "bf16" else ""), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "arch": a.arch, "hidden": a.hidden, "T": a.T, "n": a.n, "batch": a.batch, "params": params,
        "step_ms": round(step * 1e3, 2), "samples_per_s": round(a.batch / step, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
