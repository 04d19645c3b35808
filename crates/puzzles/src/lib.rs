//! loopgrad-puzzles (under construction).
