//! loopgrad-nn (under construction).
