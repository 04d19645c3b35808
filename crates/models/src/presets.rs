//! Named model configs: the published paper configurations (with their exact parameter counts) and CPU-scale
//! ones. Training settings (batch, learning rates, steps) live with the trainer's presets.
//!
//! | preset | what | params |
//! |---|---|---|
//! | `trm-mlp-sudoku` | TRM paper, Sudoku-Extreme, token MLP, D 512, T 3, n 6 | 5,028,866 |
//! | `trm-att-sudoku` | the same with attention | 6,828,034 |
//! | `trm-att-maze` | Maze-Hard 30x30, T 3, n 4 | 6,822,914 |
//! | `trm-att-arc` | ARC-AGI, T 3, n 4 | 6,829,058 |
//! | `hrm-sudoku` | HRM paper, 4 + 4 layers, 2 x 2 cycles | 27,275,266 |
//! | `trm-mlp-sudoku6-cpu` | the main job: 6x6 Sudoku, D 64, 4 prefix slots, T 2, n 2, N_sup 8 | 160,898 |
//! | `trm-att-sudoku6-cpu` | the same with 4-head attention | 132,226 |
//! | `hrm-sudoku6-cpu` | HRM at the same width: 2 + 2 layers, 2 x 2 cycles, 1 prefix slot | 263,298 |
//! | `baseline-sudoku6-cpu` | 2 distinct token-MLP blocks, no recursion (TRM's parameters) | 160,898 |
//! | `trm-mlp-sudoku9-cpu` | 9x9 Sudoku at CPU scale, D 64, T 2, n 2 | 230,402 |
//! | `trm-att-arc10-cpu` | ARC tasks that fit a 10x10 canvas, attention, D 64, 4 prefix slots, T 2, n 2, N_sup 8 | PARAMS |
//! | `trm-tiny` | a few thousand parameters for tests | 6,498 |
//!
//! Vocabularies follow the puzzle encodings of the design (section 6): Sudoku 0 = PAD, 1 = blank, 2.. = digits
//! (11 for 9x9, 8 for 6x6); Maze 0 = PAD, 1..5 = `#`, ` `, `S`, `G`, `o` (6); ARC 0 = PAD, 1 = EOS, 2..11 =
//! colours (12). The ARC preset's `num_puzzle_identifiers` is 1 here: the ARC loader knows the real count (one
//! per augmented task) and the run sets it; it does not change the published count, which excludes the table.

use crate::config::{BaselineConfig, ForwardDtype, HrmConfig, ModelConfig, TrmConfig, TrmVariant};
use loopgrad_autograd::window::GradWindow;

/// The names [`get`] knows, in the order of the table above.
pub fn names() -> &'static [&'static str] {
    &[
        "trm-mlp-sudoku",
        "trm-att-sudoku",
        "trm-att-maze",
        "trm-att-arc",
        "hrm-sudoku",
        "trm-mlp-sudoku6-cpu",
        "trm-att-sudoku6-cpu",
        "hrm-sudoku6-cpu",
        "baseline-sudoku6-cpu",
        "trm-mlp-sudoku9-cpu",
        "trm-att-arc10-cpu",
        "trm-tiny",
    ]
}

/// A preset by name; the error lists the valid names.
pub fn get(name: &str) -> Result<ModelConfig, String> {
    let trm = |seq_len, vocab_size, mlp_t, l_cycles| TrmConfig {
        seq_len,
        vocab_size,
        num_puzzle_identifiers: 1,
        puzzle_emb_len: 16,
        hidden_size: 512,
        num_heads: 8,
        expansion: 4.0,
        num_layers: 2,
        h_cycles: 3,
        l_cycles,
        halt_max_steps: 16,
        halt_exploration_prob: 0.1,
        mlp_t,
        variant: TrmVariant::YZ,
        grad_window: GradWindow::LastRecursion,
        q_continue: false,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        forward_dtype: ForwardDtype::F32,
    };
    let hrm = HrmConfig {
        seq_len: 81,
        vocab_size: 11,
        num_puzzle_identifiers: 1,
        puzzle_emb_len: 1,
        hidden_size: 512,
        num_heads: 8,
        expansion: 4.0,
        h_layers: 4,
        l_layers: 4,
        h_cycles: 2,
        l_cycles: 2,
        halt_max_steps: 16,
        halt_exploration_prob: 0.1,
        grad_window: GradWindow::OneStep,
        q_continue: true,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        forward_dtype: ForwardDtype::F32,
    };
    // The main job's shape (issue 6): 6x6 Sudoku, D 64, 2 layers, 4 prefix slots, T 2, n 2, N_sup 8.
    let sudoku6 = TrmConfig {
        seq_len: 36,
        vocab_size: 8,
        puzzle_emb_len: 4,
        hidden_size: 64,
        num_heads: 4,
        h_cycles: 2,
        l_cycles: 2,
        halt_max_steps: 8,
        ..trm(36, 8, true, 2)
    };
    Ok(match name {
        "trm-mlp-sudoku" => ModelConfig::Trm(trm(81, 11, true, 6)),
        "trm-att-sudoku" => ModelConfig::Trm(trm(81, 11, false, 6)),
        "trm-att-maze" => ModelConfig::Trm(trm(900, 6, false, 4)),
        "trm-att-arc" => ModelConfig::Trm(trm(900, 12, false, 4)),
        "hrm-sudoku" => ModelConfig::Hrm(hrm),
        "trm-mlp-sudoku6-cpu" => ModelConfig::Trm(sudoku6.clone()),
        "trm-att-sudoku6-cpu" => ModelConfig::Trm(TrmConfig { mlp_t: false, ..sudoku6.clone() }),
        "hrm-sudoku6-cpu" => ModelConfig::Hrm(HrmConfig {
            seq_len: 36,
            vocab_size: 8,
            hidden_size: 64,
            num_heads: 4,
            h_layers: 2,
            l_layers: 2,
            halt_max_steps: 8,
            ..hrm
        }),
        "baseline-sudoku6-cpu" => ModelConfig::Baseline(BaselineConfig {
            seq_len: 36,
            vocab_size: 8,
            num_puzzle_identifiers: 1,
            puzzle_emb_len: 4,
            hidden_size: 64,
            num_heads: 4,
            expansion: 4.0,
            num_layers: 2,
            mlp_t: true,
            halt_max_steps: 8,
            halt_exploration_prob: 0.1,
            q_continue: false,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            forward_dtype: ForwardDtype::F32,
        }),
        "trm-mlp-sudoku9-cpu" => ModelConfig::Trm(TrmConfig { seq_len: 81, vocab_size: 11, ..sudoku6.clone() }),
        // The 10x10 canvas of ARC's small tasks (100 tokens, vocabulary 12), with attention as TRM's ARC model.
        "trm-att-arc10-cpu" => ModelConfig::Trm(TrmConfig { seq_len: 100, vocab_size: 12, mlp_t: false, ..sudoku6 }),
        "trm-tiny" => ModelConfig::Trm(TrmConfig {
            seq_len: 6,
            vocab_size: 5,
            num_puzzle_identifiers: 3,
            puzzle_emb_len: 2,
            hidden_size: 8,
            num_heads: 2,
            num_layers: 1,
            h_cycles: 2,
            l_cycles: 2,
            halt_max_steps: 3,
            ..trm(6, 5, false, 2)
        }),
        _ => return Err(format!("unknown model preset '{name}'; valid presets: {}", names().join(", "))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published counts, and how they decompose (D = 512, SwiGLU width 1536, heads 2 x 512 + 2):
    /// - attention block: qkv 512 x 1536 + o 512 x 512 + SwiGLU 3 x 512 x 1536 = 3,407,872
    /// - token-MLP block (L' = 81 + 16 = 97, width 512): 3 x 97 x 512 + 2,359,296 = 2,508,288
    /// - I/O: embed_tokens V x 512 + lm_head 512 x V + q_head 2 x 512 + 2
    #[test]
    fn paper_presets_have_the_published_parameter_counts() {
        let io = |v: usize| 2 * v * 512 + 2 * 512 + 2;
        let cases = [
            ("trm-mlp-sudoku", 5_028_866, 2 * 2_508_288 + io(11)),
            ("trm-att-sudoku", 6_828_034, 2 * 3_407_872 + io(11)),
            ("trm-att-maze", 6_822_914, 2 * 3_407_872 + io(6)),
            ("trm-att-arc", 6_829_058, 2 * 3_407_872 + io(12)),
            ("hrm-sudoku", 27_275_266, 8 * 3_407_872 + io(11)),
        ];
        for (name, published, derived) in cases {
            let c = get(name).unwrap();
            c.validate().unwrap();
            assert_eq!(c.param_count(), published, "{name}");
            assert_eq!(derived, published, "{name}: the derivation in this test's doc comment");
        }
    }

    #[test]
    fn cpu_presets_match_their_table_rows() {
        let expected = [
            ("trm-mlp-sudoku6-cpu", 160_898),
            ("trm-att-sudoku6-cpu", 132_226),
            ("hrm-sudoku6-cpu", 263_298),
            ("baseline-sudoku6-cpu", 160_898),
            ("trm-mlp-sudoku9-cpu", 230_402),
            ("trm-tiny", 6_498),
        ];
        for (name, count) in expected {
            let c = get(name).unwrap();
            c.validate().unwrap();
            assert_eq!(c.param_count(), count, "{name}");
        }
        assert_eq!(get("trm-mlp-sudoku6-cpu").unwrap().effective_depth(), 12);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = get("trm-huge").unwrap_err();
        assert!(err.contains("trm-huge") && err.contains("trm-mlp-sudoku6-cpu"), "{err}");
        for name in names() {
            assert!(get(name).is_ok());
        }
    }
}
