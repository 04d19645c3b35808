#!/usr/bin/env python3
"""The ARC evaluation oracle for `loopgrad eval --task arc` (tests/cli_eval_arc_oracle.rs).

An independent PyTorch version of TRM's ARC evaluation, written from the reference (SamsungSAILMontreal/
TinyRecursiveModels: `dataset/build_arc_dataset.py`, `dataset/common.py`, `evaluators/arc.py`), on a small
ARC-shaped TRM-Att (the model of `trm_reference.py`: a 4x4 canvas of 16 tokens, vocabulary 12, D 16). It writes
into OUT (default tests/oracle/fixtures/arc):

    tasks/*.json            a few small ARC tasks (task JSON, one with two test inputs)
    identifiers.json        the puzzle identifiers, TRM's names (`task|||t<k>|||<colour map>`), id order
    trm_att_arc.safetensors the weights with TRM's checkpoint names (`_orig_mod.model.inner.*`), bfloat16, no
                            loopgrad config (`loopgrad eval` is given `--preset trm-att-arc10-cpu` and `--set`s)
    expected.json           per task: pass@K and the two submitted attempts per test input; overall pass@K

The evaluation is TRM's: every test input under every augmentation its identifiers name, encoded at the canvas
corner with EOS marks (colour c -> token c + 2), run SUP_STEPS supervision steps from the init carry without
halting; the argmax canvas is cropped (largest top-left rectangle of colour tokens), the augmentation undone
(inverse dihedral, then inverse colour map), and the crop votes for its (task, input) with sigmoid(q_halt).
Candidates rank by votes, then mean confidence, then the grid (rows, cols, cells: where TRM keeps insertion order,
loopgrad orders by the grid). The script asserts that no ranking is decided by a confidence difference within
f32's reach and that no argmax is near a tie, so the float32 Rust run must agree exactly.

The weights are the reference init with random puzzle embeddings, trained briefly here on the test pairs
themselves (under every augmentation) so that some test inputs are solved and some are not.

Regenerate (seconds; torch, numpy and safetensors):

    python tests/oracle/arc_reference.py --out tests/oracle/fixtures/arc
"""

import argparse
import json
import os
import random

import numpy as np
import torch

from trm_reference import GENERATOR, base, init_weights, inner_forward, save_deterministic, train_briefly

SIDE = 4
SUP_STEPS = 3
PASS_K = (1, 2, 3)
CFG = base("trm", seq_len=SIDE * SIDE, vocab_size=12, num_puzzle_identifiers=0, puzzle_emb_len=4, hidden_size=16,
           num_heads=2, num_layers=2, h_cycles=2, l_cycles=2, halt_max_steps=SUP_STEPS, mlp_t=False, variant="yz",
           grad_window="last_recursion", q_continue=False)
# loopgrad's preset of the same shape family, and the overrides that make it this model.
PRESET = "trm-att-arc10-cpu"
SETS = ["model.seq_len=16", "model.hidden_size=16", "model.num_heads=2", "model.halt_max_steps=3"]


def dihedral(a, tid):
    """TRM's `dataset/common.py` dihedral_transform."""
    return [a, np.rot90(a, 1), np.rot90(a, 2), np.rot90(a, 3), np.fliplr(a), np.flipud(a), a.T,
            np.fliplr(np.rot90(a, 1))][tid]


INVERSE = [0, 3, 2, 1, 4, 5, 6, 7]


def apply_aug(grid, tid, colours):
    return np.ascontiguousarray(dihedral(np.asarray(colours)[np.asarray(grid)], tid))


def invert_aug(grid, tid, colours):
    inverse = np.argsort(colours)
    return np.ascontiguousarray(inverse[dihedral(np.asarray(grid), INVERSE[tid])])


def aug_name(task, tid, colours):
    if tid == 0 and list(colours) == list(range(10)):
        return task
    return f"{task}|||t{tid}|||{''.join(str(c) for c in colours)}"


def encode(grid):
    """The corner of a SIDE canvas: colour c -> c + 2, EOS (1) below and right of the grid where there is room."""
    g = np.asarray(grid)
    out = np.zeros((SIDE, SIDE), dtype=np.int64)
    r, c = g.shape
    out[:r, :c] = g + 2
    if r < SIDE:
        out[r, :c] = 1
    if c < SIDE:
        out[:r, c] = 1
    return out.reshape(-1)


def crop(tokens):
    """TRM's `evaluators/arc.py` _crop, for a SIDE canvas."""
    grid = np.asarray(tokens).reshape(SIDE, SIDE)
    best, size, num_c = 0, (0, 0), SIDE
    for num_r in range(1, SIDE + 1):
        for c in range(1, num_c + 1):
            x = grid[num_r - 1, c - 1]
            if x < 2 or x > 11:
                num_c = c - 1
                break
        if num_r * num_c > best:
            best, size = num_r * num_c, (num_r, num_c)
    return (grid[: size[0], : size[1]] - 2).astype(np.int64)


def make_tasks(rng):
    """Small tasks with simple rules; grids up to 3x3, so that every augmentation fits the 4x4 canvas."""
    rules = {
        "recolour": lambda g: np.where(g == 1, 3, g),
        "mirror": lambda g: np.fliplr(g),
        "transpose": lambda g: g.T,
        "fill": lambda g: np.where(g == 0, 2, g),
        "top_row": lambda g: g[:1],
    }
    tasks = {}
    for name, rule in rules.items():
        def pair(with_output=True):
            rows, cols = rng.randint(1, 3), rng.randint(1, 3)
            g = np.array([[rng.randrange(4) for _ in range(cols)] for _ in range(rows)])
            return {"input": g.tolist(), "output": rule(g).tolist()}
        tests = [pair(), pair()] if name == "mirror" else [pair()]
        tasks[name] = {"train": [pair(), pair()], "test": tests}
    return tasks


def augmentations(rng, count):
    """The identity and `count` distinct random ones (colour 0 fixed)."""
    out = [(0, list(range(10)))]
    while len(out) < count + 1:
        colours = [0] + rng.sample(range(1, 10), 9)
        aug = (rng.randrange(8), colours)
        if aug not in out:
            out.append(aug)
    return out


def examples(tasks, ids):
    """Every test input under every version its identifiers name: (task, test index, id, aug, input, label)."""
    out = []
    for i, name in enumerate(ids):
        if i == 0:
            continue
        task, _, rest = name.partition("|||")
        tid, colours = (0, list(range(10))) if not rest else (int(rest.split("|||")[0][1:]), [int(c) for c in rest.split("|||")[1]])
        for k, pair in enumerate(tasks[task]["test"]):
            out.append((task, k, i, (tid, colours), encode(apply_aug(pair["input"], tid, colours)),
                        encode(apply_aug(pair["output"], tid, colours))))
    return out


def run(w, ex, dtype):
    d = CFG["hidden_size"]
    positions = CFG["puzzle_emb_len"] + CFG["seq_len"]
    inputs = torch.tensor(np.stack([e[4] for e in ex]))
    puzzle_ids = torch.tensor([e[2] for e in ex])
    w = {k: v.to(dtype) for k, v in w.items()}
    carry = tuple(w[k].expand(len(ex), positions, d) for k in ("inner.H_init", "inner.L_init"))
    with torch.no_grad():
        for _ in range(SUP_STEPS):
            carry, logits, q_halt, _ = inner_forward(w, CFG, carry, inputs, puzzle_ids)
    return logits, q_halt


def train(w, ex, passes, lr=3e-3):
    """`trm_reference.train_briefly` on the examples `ex`, each with its own puzzle identifier (N_sup = SUP_STEPS)."""
    inputs, labels = torch.tensor(np.stack([e[4] for e in ex])), torch.tensor(np.stack([e[5] for e in ex]))
    train_briefly(w, CFG, inputs, labels, passes, lr, puzzle_ids=torch.tensor([e[2] for e in ex]))


def vote(tasks, ex, preds, conf):
    """TRM's aggregation: per (task, original input), candidate grid -> [votes, summed confidence]."""
    ballots = {}
    for e, p, q in zip(ex, preds, conf):
        task, k, _, (tid, colours), _, _ = e
        grid = invert_aug(crop(p), tid, colours) if crop(p).size else crop(p)
        key = (grid.shape[0] if grid.size else 0, grid.shape[1] if grid.size else 0, tuple(grid.reshape(-1).tolist()))
        entry = ballots.setdefault((task, k), {}).setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += q
    return ballots


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/oracle/fixtures/arc")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(2025)
    tasks = make_tasks(rng)
    ids = ["<blank>"] + [aug_name(t, *a) for t in sorted(tasks) for a in augmentations(rng, 3)]
    CFG["num_puzzle_identifiers"] = len(ids)
    gen = torch.Generator().manual_seed(77)
    w = init_weights(CFG, gen)
    w["inner.puzzle_emb.weights"] = torch.randn(w["inner.puzzle_emb.weights"].shape, generator=gen) * 0.5
    ex = examples(tasks, ids)
    train(w, ex, passes=40)
    weights = {k: v.to(torch.bfloat16) for k, v in w.items()}
    logits, q_halt = run(weights, ex, torch.float64)
    logits32, q32 = run(weights, ex, torch.float32)
    f32_error = (logits32.double() - logits).abs().max().item()
    top2 = logits.topk(2, dim=-1).values
    margin = (top2[..., 0] - top2[..., 1]).min().item()
    assert margin > 10 * f32_error, f"an argmax {margin:.1e} from a tie (f32 error {f32_error:.1e})"
    conf = torch.sigmoid(q_halt).tolist()
    conf_error = (torch.sigmoid(q32.double()) - torch.sigmoid(q_halt)).abs().max().item()
    ballots = vote(tasks, ex, logits.argmax(-1).numpy(), conf)
    per_task, submission = [], {}
    for task in sorted(tasks):
        passes, attempts = [0.0] * len(PASS_K), []
        for k, pair in enumerate(tasks[task]["test"]):
            ranked = sorted(ballots[(task, k)].items(), key=lambda kv: (-kv[1][0], -kv[1][1] / kv[1][0], kv[0]))
            for (g1, s1), (g2, s2) in zip(ranked, ranked[1:]):
                if s1[0] == s2[0]:  # a tie on votes: the confidence gap must be far beyond f32's error
                    gap = abs(s1[1] / s1[0] - s2[1] / s2[0])
                    assert gap > 100 * conf_error, f"{task}: confidences {gap:.1e} apart (f32 error {conf_error:.1e})"
            out = np.asarray(pair["output"])
            truth = (out.shape[0], out.shape[1], tuple(out.reshape(-1).tolist()))
            position = next((i for i, (g, _) in enumerate(ranked) if g == truth), None)
            for j, kk in enumerate(PASS_K):
                passes[j] += (position is not None and position < kk) / len(tasks[task]["test"])
            grids = [np.asarray(g[2]).reshape(g[0], g[1]).tolist() if g[0] else [] for g, _ in ranked[:2]]
            grids += [grids[0]] * (2 - len(grids))
            attempts.append({"attempt_1": grids[0], "attempt_2": grids[1]})
        per_task.append({"task": task, "pass": {f"pass@{k}": p for k, p in zip(PASS_K, passes)}})
        submission[task] = attempts
    overall = {f"pass@{k}": sum(t["pass"][f"pass@{k}"] for t in per_task) / len(per_task) for k in PASS_K}
    os.makedirs(os.path.join(args.out, "tasks"), exist_ok=True)
    for name, task in tasks.items():
        with open(os.path.join(args.out, "tasks", f"{name}.json"), "w") as f:
            json.dump(task, f)
    with open(os.path.join(args.out, "identifiers.json"), "w") as f:
        json.dump(ids, f)
    meta = {"generator": "tests/oracle/arc_reference.py", "torch": torch.__version__, "format": "pt"}
    save_deterministic({f"_orig_mod.model.{k}": v.contiguous() for k, v in weights.items()},
                       os.path.join(args.out, "trm_att_arc.safetensors"), meta)
    expected = {"generator": "tests/oracle/arc_reference.py", "preset": PRESET, "sets": SETS, "steps": SUP_STEPS,
                "pass_k": list(PASS_K), "overall": overall, "per_task": per_task, "submission": submission,
                "min_argmax_margin": margin, "logits_f32_error": f32_error, "confidence_f32_error": conf_error}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(ids)} identifiers, {len(ex)} test examples, overall {overall}, "
          f"argmax margin {margin:.1e} vs f32 error {f32_error:.1e}")


if __name__ == "__main__":
    main()
