//! What a supervision step costs, counted from the config: the matrix-multiply FLOPs of the forward and backward
//! passes (2 per multiply-add), which is where nearly all the time goes. The study uses it to compare models at
//! equal training compute, not only at equal steps.
//!
//! Per example and net call, each block costs (L' positions, width D, SwiGLU width I(D), token-MLP width I(L')):
//! ```text
//! attention block   2 L' D 3D (qkv) + 2 L'^2 D (scores) + 2 L'^2 D (P V) + 2 L' D D (o) + 2 L' 3 D I (SwiGLU)
//! token-MLP block   2 D 3 L' I(L') (mlp_t)                                              + 2 L' 3 D I (SwiGLU)
//! ```
//! A recorded call's backward costs twice its forward (dX and dW); an untaped call has no backward. The
//! heads add 2 L D V (+ 2 D 2) forward. `full_recompute` runs every recursion but the last forward twice.

use crate::config::ModelConfig;
use loopgrad_autograd::window::GradWindow;
use loopgrad_nn::layers::swiglu_width;
use serde::{Deserialize, Serialize};

/// FLOPs of one supervision step for a batch of one example (multiply by the batch size).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    /// Net calls per step, and how many of them are recorded.
    pub calls: usize,
    pub recorded_calls: usize,
    pub forward_flops: f64,
    pub backward_flops: f64,
}

impl StepCost {
    pub fn total_flops(&self) -> f64 {
        self.forward_flops + self.backward_flops
    }
}

impl ModelConfig {
    /// The forward and backward FLOPs of one training supervision step, per example (see the module doc).
    /// HRM's extra no-grad forward for the continue target is included when the model learns q_continue.
    pub fn step_cost(&self) -> StepCost {
        let io = self.io();
        let (l, d) = (io.positions() as f64, io.hidden_size as f64);
        let attention = 2.0 * l * d * 3.0 * d + 4.0 * l * l * d + 2.0 * l * d * d;
        let block = |mlp_t: bool, expansion: f64| {
            let ffn = 2.0 * l * 3.0 * d * swiglu_width(io.hidden_size, expansion) as f64;
            let mixer =
                if mlp_t { 2.0 * d * 3.0 * l * swiglu_width(io.positions(), expansion) as f64 } else { attention };
            mixer + ffn
        };
        // (flops of each call in order, window, calls per recursion, recursions)
        let (per_call, window, per_recursion, recursions): (Vec<f64>, GradWindow, usize, usize) = match self {
            ModelConfig::Trm(c) => {
                let net = c.num_layers as f64 * block(c.mlp_t, c.expansion);
                (vec![net; c.l_cycles + 1], c.grad_window, c.l_cycles + 1, c.h_cycles)
            }
            ModelConfig::Hrm(c) => {
                let (l_net, h_net) =
                    (c.l_layers as f64 * block(false, c.expansion), c.h_layers as f64 * block(false, c.expansion));
                let mut calls = vec![l_net; c.l_cycles];
                calls.push(h_net);
                (calls, c.grad_window, c.l_cycles + 1, c.h_cycles)
            }
            ModelConfig::Baseline(c) => {
                (vec![c.num_layers as f64 * block(c.mlp_t, c.expansion)], GradWindow::Full, 1, 1)
            }
        };
        let total = per_recursion * recursions;
        let recorded = window.recorded_calls(recursions, per_recursion);
        let call = |i: usize| per_call[i % per_recursion];
        let heads = 2.0 * io.seq_len as f64 * d * io.vocab_size as f64 + 4.0 * d;
        let step_forward = (0..total).map(call).sum::<f64>() + heads;
        let recorded_forward = (total - recorded..total).map(call).sum::<f64>() + heads;
        let recomputed =
            if window == GradWindow::FullRecompute { (0..total - per_recursion).map(call).sum::<f64>() } else { 0.0 };
        let target = if self.q_continue() { step_forward } else { 0.0 };
        StepCost {
            calls: total,
            recorded_calls: recorded,
            forward_flops: step_forward + recomputed + target,
            backward_flops: 2.0 * recorded_forward,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::presets;

    #[test]
    fn trm_mlp_sudoku_step_cost_by_hand() {
        let c = presets::get("trm-mlp-sudoku").unwrap().step_cost();
        // One block: mlp_t 2 * 512 * 3 * 97 * 512 + SwiGLU 2 * 97 * 3 * 512 * 1536; 2 blocks per call.
        let block = 2.0 * 512.0 * 3.0 * 97.0 * 512.0 + 2.0 * 97.0 * 3.0 * 512.0 * 1536.0;
        let heads = 2.0 * 81.0 * 512.0 * 11.0 + 4.0 * 512.0;
        assert_eq!((c.calls, c.recorded_calls), (21, 7));
        assert_eq!(c.forward_flops, 21.0 * 2.0 * block + heads);
        assert_eq!(c.backward_flops, 2.0 * (7.0 * 2.0 * block + heads));
    }

    #[test]
    fn hrm_counts_its_target_forward_and_one_step_backward() {
        let c = presets::get("hrm-sudoku").unwrap().step_cost();
        assert_eq!((c.calls, c.recorded_calls), (6, 2));
        assert!(c.forward_flops > 1.9 * c.backward_flops, "two forwards of 6 calls vs the backward of 2 calls");
    }
}
