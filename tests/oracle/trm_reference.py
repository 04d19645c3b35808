#!/usr/bin/env python3
"""The whole-model oracle for loopgrad, in the manner of llm.c's `train_gpt2.py`.

A small, independent PyTorch implementation of TRM (token-MLP and attention variants) and HRM, faithful to the
reference code (SamsungSAILMontreal/TinyRecursiveModels, sapientinc/HRM): post-norm blocks, RMSNorm without
gain (eps 1e-5), fused SwiGLU (gate first), fused qkv attention with rotate-half RoPE, sqrt(D)-scaled input with
a puzzle-embedding prefix, T-1 recursions without gradient and one with (TRM), HRM's 1-step gradient and its
bootstrapped continue target, stablemax cross-entropy, and the ACT loss of one supervision step.

For each of three small models it writes `<name>.safetensors` holding

    inner.*                     the weights, float32, with the reference names (and the carry init buffers)
    batch.inputs/labels/...     the batch (int64) and, for HRM, `batch.is_last_step` (int64 0/1)
    out.logits, out.q_halt, out.q_continue, out.loss, out.target_q_continue (HRM), out.carry.<i>
    grad.<name>                 d loss / d every trained tensor (including the puzzle embedding), float64

and the model config (loopgrad's JSON) in the safetensors metadata under "config". The forward runs in float64
from the float32 weights, so loopgrad in f64 must agree to ~1e-10 and in f32 to ~1e-4.

The weights are the reference init except where that would leave a path untested: the q_head (zero weight in
the reference) and the puzzle embeddings (zero in the reference) get small random values, and the carry starts
from the init vectors plus noise, so that every gradient is non-trivial.

The evaluation oracle (`--eval-out DIR`, for `loopgrad eval`, tests/cli_eval_oracle.rs) writes into DIR, next to
the puzzles `sudoku6.csv` it reads (16 6x6 puzzles from `loopgrad data sudoku --box 2x3 --count 16 --seed 2024`):

    trm_mlp_sudoku6.safetensors  a TRM-MLP with the architecture of loopgrad's preset `trm-mlp-sudoku6-cpu`,
                                 briefly trained here (see `make_eval_fixture`), reference names, bfloat16
    expected.json                the reference evaluation of those weights on those puzzles after 1, 3 and 8
                                 supervision steps: loss, exact and token accuracy, and the per-example numbers

Regenerate (seconds on a CPU; needs torch and safetensors; without arguments it writes both sets):

    python tests/oracle/trm_reference.py --out tests/oracle/fixtures
    python tests/oracle/trm_reference.py --eval-out tests/oracle/fixtures/eval

The files are byte-for-byte reproducible with the same torch build on the same CPU (the metadata order is fixed
by `save_deterministic`); the eval weights come out of float32 training, whose last bits may differ elsewhere.
"""

import argparse
import csv
import json
import math
import os
import struct

import torch
import torch.nn.functional as F
from safetensors.torch import save

IGNORE = 0  # PAD: labels equal to it are ignored


# ---------------------------------------------------------------------------------------------------------------
# Layers (functional, weights in a dict by reference name)


def trunc_normal_(t, std, gen):
    """TRM/HRM `trunc_normal_init_`: N(0, 1) cut at +-2, rescaled so that the result has standard deviation std."""
    with torch.no_grad():
        x = torch.empty(t.numel() * 3, dtype=torch.float64).normal_(generator=gen)
        x = x[(x >= -2) & (x <= 2)][: t.numel()]
        assert x.numel() == t.numel()
        trunc_std = 0.8796256610342398
        t.copy_((x * std / trunc_std).view_as(t).to(t.dtype))
    return t


def swiglu_width(width, expansion):
    inter = round(expansion * width * 2 / 3)  # Python rounds half to even, as the reference does
    return -(inter // -256) * 256


def rms_norm(x, eps):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)


def swiglu(w, prefix, x):
    gate, up = F.linear(x, w[f"{prefix}.gate_up_proj.weight"]).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, w[f"{prefix}.down_proj.weight"])


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope_tables(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(positions, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def attention(w, prefix, x, heads, cos_sin):
    b, l, d = x.shape
    hd = d // heads
    qkv = F.linear(x, w[f"{prefix}.qkv_proj.weight"]).view(b, l, 3 * heads, hd)
    q, k, v = qkv[:, :, :heads], qkv[:, :, heads : 2 * heads], qkv[:, :, 2 * heads :]
    if cos_sin is not None:
        cos, sin = (t.unsqueeze(-2).to(q.dtype) for t in cos_sin)  # [L, 1, hd], in the forward's precision
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, L, hd]
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, l, d)
    return F.linear(o, w[f"{prefix}.o_proj.weight"])


def block(w, prefix, h, cfg, cos_sin):
    eps = cfg["rms_norm_eps"]
    if cfg.get("mlp_t", False):
        t = h.transpose(1, 2)  # [B, D, L']
        t = rms_norm(t + swiglu(w, f"{prefix}.mlp_t", t), eps)
        h = t.transpose(1, 2)
    else:
        h = rms_norm(h + attention(w, f"{prefix}.self_attn", h, cfg["num_heads"], cos_sin), eps)
    return rms_norm(h + swiglu(w, f"{prefix}.mlp", h), eps)


def net(w, level, layers, h, injection, cfg, cos_sin):
    """The reference ReasoningModule: blocks(h + injection)."""
    h = h + injection
    for i in range(layers):
        h = block(w, f"inner.{level}.layers.{i}", h, cfg, cos_sin)
    return h


# ---------------------------------------------------------------------------------------------------------------
# Models


def declare(cfg):
    """(name, shape, init, trained) of every tensor, in loopgrad's declaration order."""
    d, v, p = cfg["hidden_size"], cfg["vocab_size"], cfg["puzzle_emb_len"]
    out = [
        ("inner.embed_tokens.embedding_weight", (v, d), ("trunc", 1 / math.sqrt(d)), True),
        ("inner.lm_head.weight", (v, d), ("trunc", 1 / math.sqrt(d)), True),
        ("inner.q_head.weight", (2, d), ("trunc", 0.1), True),  # reference: zeros (see module doc)
        ("inner.q_head.bias", (2,), ("const", -0.5), True),  # reference: -5
        ("inner.puzzle_emb.weights", (cfg["num_puzzle_identifiers"], d), ("trunc", 0.5), True),  # ref: zeros
    ]

    def linear(name, i, o):
        out.append((f"{name}.weight", (o, i), ("trunc", 1 / math.sqrt(i)), True))

    def stack(level, layers, mlp_t):
        for i in range(layers):
            pre = f"inner.{level}.layers.{i}"
            if mlp_t:
                positions = p + cfg["seq_len"]
                inter = swiglu_width(positions, cfg["expansion"])
                linear(f"{pre}.mlp_t.gate_up_proj", positions, 2 * inter)
                linear(f"{pre}.mlp_t.down_proj", inter, positions)
            else:
                linear(f"{pre}.self_attn.qkv_proj", d, 3 * d)
                linear(f"{pre}.self_attn.o_proj", d, d)
            inter = swiglu_width(d, cfg["expansion"])
            linear(f"{pre}.mlp.gate_up_proj", d, 2 * inter)
            linear(f"{pre}.mlp.down_proj", inter, d)

    if cfg["arch"] == "trm":
        stack("L_level", cfg["num_layers"], cfg["mlp_t"])
    else:
        stack("H_level", cfg["h_layers"], False)
        stack("L_level", cfg["l_layers"], False)
    out += [("inner.H_init", (d,), ("trunc", 1.0), False), ("inner.L_init", (d,), ("trunc", 1.0), False)]
    return out


def init_weights(cfg, gen):
    w = {}
    for name, shape, (kind, val), _ in declare(cfg):
        t = torch.empty(shape, dtype=torch.float32)
        if kind == "trunc":
            trunc_normal_(t, val, gen)
        else:
            t.fill_(val)
        w[name] = t
    return w


def input_embeddings(w, cfg, inputs, puzzle_ids):
    d, p = cfg["hidden_size"], cfg["puzzle_emb_len"]
    tokens = F.embedding(inputs, w["inner.embed_tokens.embedding_weight"])
    puzzle = F.embedding(puzzle_ids, w["inner.puzzle_emb.weights"])  # [B, D]
    puzzle = F.pad(puzzle, (0, p * d - puzzle.shape[-1])).view(-1, p, d)
    return math.sqrt(d) * torch.cat((puzzle, tokens), dim=-2)


def inner_forward(w, cfg, carry, inputs, puzzle_ids):
    """One supervision step of the inner model: (new carry, logits, q_halt, q_continue)."""
    x = input_embeddings(w, cfg, inputs, puzzle_ids)
    positions = cfg["puzzle_emb_len"] + cfg["seq_len"]
    attn = cfg["arch"] == "hrm" or not cfg["mlp_t"]
    cos_sin = rope_tables(positions, cfg["hidden_size"] // cfg["num_heads"], cfg["rope_theta"]) if attn else None
    T, n = cfg["h_cycles"], cfg["l_cycles"]
    z_h, z_l = carry
    if cfg["arch"] == "trm":
        assert cfg["grad_window"] == "last_recursion" and cfg["variant"] == "yz"
        L = cfg["num_layers"]
        with torch.no_grad():  # T-1 recursions without gradient
            for _ in range(T - 1):
                for _ in range(n):
                    z_l = net(w, "L_level", L, z_l, z_h + x, cfg, cos_sin)
                z_h = net(w, "L_level", L, z_h, z_l, cfg, cos_sin)
        for _ in range(n):  # the last one recorded
            z_l = net(w, "L_level", L, z_l, z_h + x, cfg, cos_sin)
        z_h = net(w, "L_level", L, z_h, z_l, cfg, cos_sin)
    else:
        assert cfg["grad_window"] == "one_step"
        HL, LL = cfg["h_layers"], cfg["l_layers"]
        with torch.no_grad():
            for i in range(T):
                for j in range(n):
                    if not (i == T - 1 and j == n - 1):
                        z_l = net(w, "L_level", LL, z_l, z_h + x, cfg, cos_sin)
                if i != T - 1:
                    z_h = net(w, "H_level", HL, z_h, z_l, cfg, cos_sin)
        z_l = net(w, "L_level", LL, z_l, z_h + x, cfg, cos_sin)  # 1-step gradient
        z_h = net(w, "H_level", HL, z_h, z_l, cfg, cos_sin)
    logits = F.linear(z_h, w["inner.lm_head.weight"])[:, cfg["puzzle_emb_len"] :]
    q = F.linear(z_h[:, 0], w["inner.q_head.weight"], w["inner.q_head.bias"])
    return (z_h.detach(), z_l.detach()), logits, q[..., 0], q[..., 1]


def stablemax_ce(logits, labels):
    s = torch.where(logits < 0, 1 / (1 - logits), logits + 1)
    logp = torch.log(s / s.sum(-1, keepdim=True))
    valid = labels != IGNORE
    picked = torch.gather(logp, -1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0)


def act_loss(logits, q_halt, q_continue, labels, target_q_continue):
    valid = labels != IGNORE
    counts = valid.sum(-1)
    correct = valid & (logits.argmax(-1) == labels)
    exact = correct.sum(-1) == counts
    lm = (stablemax_ce(logits, labels) / counts.clamp_min(1).unsqueeze(-1)).sum()
    q_terms = F.binary_cross_entropy_with_logits(q_halt, exact.to(q_halt.dtype), reduction="sum")
    if target_q_continue is not None:
        q_terms = q_terms + F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")
    return (lm + 0.5 * q_terms) / labels.shape[0]


# ---------------------------------------------------------------------------------------------------------------
# Fixtures


def base(arch, **kw):
    cfg = dict(
        arch=arch, seq_len=6, vocab_size=7, num_puzzle_identifiers=3, hidden_size=16, num_heads=2, expansion=4.0,
        halt_max_steps=4, halt_exploration_prob=0.1, rms_norm_eps=1e-5, rope_theta=10000.0,
    )
    cfg.update(kw)
    return cfg


MODELS = {
    "trm_mlp": base("trm", puzzle_emb_len=2, num_layers=2, h_cycles=2, l_cycles=2, mlp_t=True, variant="yz",
                    grad_window="last_recursion", q_continue=False, hidden_size=8),
    "trm_att": base("trm", puzzle_emb_len=2, num_layers=2, h_cycles=3, l_cycles=2, mlp_t=False, variant="yz",
                    grad_window="last_recursion", q_continue=False),
    "hrm": base("hrm", puzzle_emb_len=1, h_layers=2, l_layers=1, h_cycles=2, l_cycles=2, grad_window="one_step",
                q_continue=True, hidden_size=8),
}


GENERATOR = "tests/oracle/trm_reference.py"


def save_deterministic(tensors, path, metadata):
    """`safetensors.torch.save_file`, but with the metadata in `metadata`'s order: the library writes it from a
    Rust HashMap, in a different order on every run, so that a regenerated file would differ byte for byte."""
    raw = save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8 : 8 + n].decode()
    header = json.loads(text)
    compact = lambda h: json.dumps(h, separators=(",", ":"), ensure_ascii=False)
    assert compact(header) == text.rstrip(" "), "the library's header is not compact JSON: cannot reorder it"
    header["__metadata__"] = dict(metadata)
    ordered = compact(header).encode()
    assert len(ordered) <= n
    with open(path, "wb") as f:
        f.write(raw[:8] + ordered + b" " * (n - len(ordered)) + raw[8 + n :])


def make_fixture(name, cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    w32 = init_weights(cfg, gen)
    trained = [n for n, _, _, t in declare(cfg) if t]
    w = {k: v.double().requires_grad_(k in trained) for k, v in w32.items()}
    B, L, V, D = 3, cfg["seq_len"], cfg["vocab_size"], cfg["hidden_size"]
    positions = cfg["puzzle_emb_len"] + L
    inputs = torch.randint(1, V, (B, L), generator=gen)
    puzzle_ids = torch.tensor([2, 0, 2])
    # The carry: the init vectors broadcast to every position, plus noise so that positions differ.
    carry = tuple(
        (w32[k].double().expand(B, positions, D) + 0.3 * torch.randn(B, positions, D, generator=gen, dtype=torch.float64))
        .float().double()  # representable in f32, so loopgrad's f32 run starts from the same numbers
        for k in ("inner.H_init", "inner.L_init")
    )
    with torch.no_grad():
        _, probe, _, _ = inner_forward(w, cfg, carry, inputs, puzzle_ids)
    labels = torch.randint(1, V, (B, L), generator=gen)
    labels[0] = probe[0].argmax(-1)  # slot 0 is answered exactly: q_halt's target is 1 there
    labels[1, :2] = IGNORE  # slot 1 has ignored positions
    top2 = probe.topk(2, dim=-1).values
    margin = (top2[..., 0] - top2[..., 1]).min().item()
    assert margin > 1e-4, f"{name}: an argmax is within {margin} of a tie; f32 and f64 could disagree"

    new_carry, logits, q_halt, q_continue = inner_forward(w, cfg, carry, inputs, puzzle_ids)
    target = None
    is_last = torch.tensor([0, 1, 0])
    if cfg["q_continue"]:
        with torch.no_grad():  # HRM's bootstrapped target: one more step from the new carry
            _, _, nh, nc = inner_forward(w, cfg, new_carry, inputs, puzzle_ids)
            target = torch.sigmoid(torch.where(is_last.bool(), nh, torch.maximum(nh, nc)))
    loss = act_loss(logits, q_halt, q_continue, labels, target)
    loss.backward()

    tensors = dict(w32)
    tensors.update({
        "batch.inputs": inputs, "batch.labels": labels, "batch.puzzle_identifiers": puzzle_ids,
        "carry.0": carry[0], "carry.1": carry[1],
        "out.logits": logits.detach(), "out.q_halt": q_halt.detach(), "out.q_continue": q_continue.detach(),
        "out.loss": loss.detach().reshape(()), "out.carry.0": new_carry[0], "out.carry.1": new_carry[1],
    })
    if target is not None:
        tensors["batch.is_last_step"] = is_last
        tensors["out.target_q_continue"] = target
    for k in trained:
        tensors[f"grad.{k}"] = w[k].grad
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta = {"generator": GENERATOR, "torch": torch.__version__, "config": json.dumps(cfg)}
    return tensors, meta, loss.item()


# ---------------------------------------------------------------------------------------------------------------
# The evaluation oracle: a checkpoint written by PyTorch, scored here and by `loopgrad eval`

EVAL_PRESET = "trm-mlp-sudoku6-cpu"  # loopgrad's model preset with this architecture (the main job's)
EVAL_CFG = dict(
    arch="trm", seq_len=36, vocab_size=8, num_puzzle_identifiers=1, puzzle_emb_len=4, hidden_size=64, num_heads=4,
    expansion=4.0, num_layers=2, h_cycles=2, l_cycles=2, halt_max_steps=8, halt_exploration_prob=0.1, mlp_t=True,
    variant="yz", grad_window="last_recursion", q_continue=False, rms_norm_eps=1e-5, rope_theta=10000.0,
    forward_dtype="f32",  # the products' precision: this oracle evaluates in f64 and f32
)
EVAL_STEPS = (1, 3, 8)  # supervision steps per example; 8 is N_sup, the preset's halt_max_steps


def read_sudoku_csv(path):
    """A `source,question,answer,rating` file as tokens (1 = blank '.', digit d = d + 1): inputs, labels [N, L]."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    tokens = lambda grid: [1 if c == "." else int(c) + 1 for c in grid]
    return torch.tensor([tokens(r["question"]) for r in rows]), torch.tensor([tokens(r["answer"]) for r in rows])


def evaluate(w, cfg, inputs, labels, steps):
    """The reference evaluation: every example runs `steps` supervision steps from the init carry (H_init, L_init
    broadcast to every position), halting off; scores at the final step. Returns per example the mean stablemax
    CE over its non-PAD labels (float64, as the reference) and its correct and valid token counts, and the final
    logits [N, L, V]."""
    b, d = inputs.shape[0], cfg["hidden_size"]
    positions = cfg["puzzle_emb_len"] + cfg["seq_len"]
    carry = tuple(w[k].expand(b, positions, d) for k in ("inner.H_init", "inner.L_init"))
    puzzle_ids = torch.zeros(b, dtype=torch.long)  # Sudoku has one puzzle identifier
    with torch.no_grad():
        for _ in range(steps):
            carry, logits, _, _ = inner_forward(w, cfg, carry, inputs, puzzle_ids)
    valid = (labels != IGNORE).sum(-1)
    ce = stablemax_ce(logits.double(), labels).sum(-1) / valid.clamp_min(1)
    correct = ((labels != IGNORE) & (logits.argmax(-1) == labels)).sum(-1)
    return ce, correct, valid, logits


def train_briefly(w, cfg, inputs, labels, passes, lr=3e-3, puzzle_ids=None):
    """Deep supervision on (inputs, labels), in place on the float32 weights `w`: `passes` times, the batch starts
    from the init carry and runs N_sup supervision steps, each with the ACT loss and an Adam step (betas as the
    reference's), the carry detached between steps. No halting: every pass runs all N_sup steps. `puzzle_ids`
    gives each example's puzzle identifier (all 0, Sudoku's one identifier, when None)."""
    trained = [n for n, _, _, t in declare(cfg) if t]
    for k in trained:
        w[k].requires_grad_(True)
    opt = torch.optim.Adam([w[k] for k in trained], lr=lr, betas=(0.9, 0.95))
    b, d = inputs.shape[0], cfg["hidden_size"]
    positions = cfg["puzzle_emb_len"] + cfg["seq_len"]
    if puzzle_ids is None:
        puzzle_ids = torch.zeros(b, dtype=torch.long)
    for _ in range(passes):
        carry = tuple(w[k].expand(b, positions, d) for k in ("inner.H_init", "inner.L_init"))
        for _ in range(cfg["halt_max_steps"]):
            carry, logits, q_halt, q_continue = inner_forward(w, cfg, carry, inputs, puzzle_ids)
            opt.zero_grad()
            act_loss(logits.double(), q_halt, q_continue, labels, None).backward()
            opt.step()
    for k in trained:
        w[k].requires_grad_(False)


def make_eval_fixture(out_dir, seed=4321, train_puzzles=8, passes=8):
    """Writes `trm_mlp_sudoku6.safetensors` (reference names, bfloat16 to keep the fixture small; no loopgrad
    config, so `loopgrad eval` needs `--preset`) and `expected.json` (the scores at each of EVAL_STEPS) for the
    puzzles of `sudoku6.csv` in `out_dir`. The scores come from a float64 forward of the stored weights; a float32
    forward is recorded beside them (`loss_f32_forward`) to show how far f32 arithmetic alone moves the loss.

    The weights are the init of `declare` trained briefly on the first `train_puzzles` puzzles, for two reasons.
    At the random init the recursion is chaotic: f32 and f64 forwards of the same weights drift apart about five
    times per supervision step and differ by ~30% in the carry after 8 steps, so no two f32 implementations could
    agree at N_sup; a little training makes it contract, as in a trained model. And it makes the scores
    informative: some puzzles are solved, at some step counts and not others."""
    cfg = EVAL_CFG
    gen = torch.Generator().manual_seed(seed)
    inputs, labels = read_sudoku_csv(os.path.join(out_dir, "sudoku6.csv"))
    assert inputs.shape[1] == cfg["seq_len"] and int(labels.max()) < cfg["vocab_size"]
    w32 = init_weights(cfg, gen)
    train_briefly(w32, cfg, inputs[:train_puzzles], labels[:train_puzzles], passes)
    weights = {k: v.to(torch.bfloat16) for k, v in w32.items()}
    runs = []
    for steps in EVAL_STEPS:
        ce, correct, valid, logits = evaluate({k: v.double() for k, v in weights.items()}, cfg, inputs, labels, steps)
        ce32, _, _, logits32 = evaluate({k: v.float() for k, v in weights.items()}, cfg, inputs, labels, steps)
        # The accuracies are compared exactly: every argmax must be far from a tie compared with f32's error.
        top2 = logits.topk(2, dim=-1).values
        margin = (top2[..., 0] - top2[..., 1]).min().item()
        f32_error = (logits32.double() - logits).abs().max().item()
        assert margin > 10 * f32_error, f"steps {steps}: an argmax {margin:.1e} from a tie (f32 error {f32_error:.1e})"
        runs.append({
            "steps": steps,
            "examples": len(ce),
            "loss": ce.mean().item(),
            "exact_accuracy": (correct == valid).double().mean().item(),
            "token_accuracy": correct.sum().item() / valid.sum().item(),  # over all tokens, as loopgrad
            "loss_f32_forward": ce32.mean().item(),
            "logits_f32_error": f32_error,
            "min_argmax_margin": margin,
            "example_loss": ce.tolist(),
            "example_correct_tokens": correct.tolist(),
            "example_valid_tokens": valid.tolist(),
        })
    meta = {"generator": GENERATOR, "torch": torch.__version__, "format": "pt", "preset": EVAL_PRESET}
    path = os.path.join(out_dir, "trm_mlp_sudoku6.safetensors")
    save_deterministic({k: v.contiguous() for k, v in weights.items()}, path, meta)
    expected = {"generator": GENERATOR, "torch": torch.__version__, "preset": EVAL_PRESET, "config": cfg,
                "checkpoint": os.path.basename(path), "data": "sudoku6.csv", "runs": runs}
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for r in runs:
        print(f"{path}: {r['steps']} steps: loss {r['loss']:.10f} (f32 forward {r['loss_f32_forward']:.10f}), "
              f"exact {r['exact_accuracy']:.4f}, token {r['token_accuracy']:.4f}, "
              f"argmax margin {r['min_argmax_margin']:.1e} vs f32 logit error {r['logits_f32_error']:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the one-step fixtures here")
    ap.add_argument("--eval-out", help="write the evaluation fixtures here (reads sudoku6.csv from it)")
    args = ap.parse_args()
    if args.out is None and args.eval_out is None:
        args.out, args.eval_out = "tests/oracle/fixtures", "tests/oracle/fixtures/eval"
    torch.set_num_threads(1)
    if args.eval_out is not None:
        make_eval_fixture(args.eval_out)
    if args.out is None:
        return
    os.makedirs(args.out, exist_ok=True)
    for i, (name, cfg) in enumerate(MODELS.items()):
        tensors, meta, loss = make_fixture(name, cfg, seed=1234 + i)
        path = os.path.join(args.out, f"{name}.safetensors")
        save_deterministic(tensors, path, meta)
        print(f"{path}: loss {loss:.10f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
