#!/bin/bash
# loopgrad against PyTorch eager (../shared/bench/torch_trm.py, benches/torch_eval.py), f32 and bf16, 2 threads
# each, one after the other, ROUNDS rounds; one line per run: round, configuration, dtype, program, its JSON.
# Run from the repository root, with `cargo build --release` done and PY a python with torch and safetensors:
#   PY=venv/bin/python ROUNDS=2 docs/bench-runs/side-by-side.sh > runs.txt
#   python3 docs/bench-runs/ratios.py runs.txt
# LGS may name several loopgrad binaries (each runs before PyTorch in every round).
LGS=${LGS:-target/release/loopgrad}; PY=${PY:-python3}; REF=../shared/bench/torch_trm.py
ROUNDS=${ROUNDS:-2}
MAIN="--arch mlp --hidden 64 --seq 36 --prefix 4 --vocab 8 --T 2 --n 2 --batch 64"
PMLP="--arch mlp --hidden 512 --batch 8"
PATT="--arch att --hidden 512 --batch 8"
for r in $(seq $ROUNDS); do
  for cfg in main pmlp patt maineval; do
    case $cfg in
      main) F="$MAIN --steps 20 --warmup 2";;
      pmlp) F="$PMLP --steps 3 --warmup 1";;
      patt) F="$PATT --steps 3 --warmup 1";;
      maineval) F="$MAIN --steps 3 --warmup 1";;
    esac
    for dt in f32 bf16; do
      if [ $cfg = maineval ]; then
        for LG in $LGS; do echo "$r $cfg $dt $(basename $LG) $($LG bench $F --threads 2 --dtype $dt --eval 2>/dev/null)"; done
        echo "$r $cfg $dt torch $($PY benches/torch_eval.py --ref $REF $F --threads 2 --dtype $dt 2>/dev/null | tail -1)"
      else
        for LG in $LGS; do echo "$r $cfg $dt $(basename $LG) $($LG bench $F --threads 2 --dtype $dt 2>/dev/null)"; done
        echo "$r $cfg $dt torch $($PY $REF $F --threads 2 --dtype $dt 2>/dev/null | tail -1)"
      fi
    done
  done
done
