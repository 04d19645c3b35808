//! loopgrad-nn: layers, initialisation, optimizers, learning-rate schedules, EMA of the weights and safetensors
//! checkpoints, all built on the named [`ParamStore`](loopgrad_autograd::ParamStore) of the autograd crate.

pub mod layers;
