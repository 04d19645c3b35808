//! Layers: Linear, Embedding, SwiGLU, attention with RoPE, the token-mixing MLP and the post-norm blocks.
