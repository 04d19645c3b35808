//! loopgrad-models (under construction).
