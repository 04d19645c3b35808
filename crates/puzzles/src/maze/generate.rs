//! Random-wall mazes with a route-length filter: Searchformer's generator plus HRM's "hard" filter, as
//! `../shared/data/maze/README.md` describes, for any square size.
//!
//! Per wall layout: shuffle the cells, draw `num_walls` uniformly from `[N/10*3, N/10*5]` (integer division,
//! `N = size * size`), wall the first `num_walls` cells; then up to `attempts` times draw an ordered pair of
//! distinct free cells (S, G) uniformly, and accept the first pair whose shortest route (cells, S and G included)
//! has at least `max(size, min_route)` cells. A layout gives at most one maze; layouts are drawn until one does.
//! Labels come from the deterministic A* ([`super::astar`]).
//!
//! Drawing the pair directly is the same distribution as Searchformer's "shuffle the free cells, take the first
//! two". Two shortcuts skip hopeless searches without changing any result: pairs in different connected
//! components are rejected at once, and so are pairs in a component whose diameter bound (twice the depth of a
//! breadth-first tree of it) is too short for the route. Otherwise a breadth-first search from S stops at G.

use super::{label, neighbours, MazeRecord, FREE, GOAL, START, WALL};
use crate::rng::Rng;
use rayon::prelude::*;
use std::collections::VecDeque;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MazeConfig {
    pub size: usize,
    /// Minimum route length in cells, S and G included (Maze-Hard: 110 for 30x30). The effective minimum is
    /// `max(size, min_route)`, Searchformer's own filter.
    pub min_route: usize,
    /// (S, G) pairs tried per wall layout (Searchformer: 100).
    pub attempts: usize,
    /// Layouts tried per maze before giving up (a guard against routes no layout allows).
    pub max_layouts: u64,
}

/// Layouts drawn before asking whether any of them could hold the route at all (see [`GaveUp`]).
pub const REACH_CHECK: u64 = 10_000;

/// Why [`generate_one`] gave up: `layouts` layouts were drawn and none gave a maze. `longest_possible` bounds the
/// longest route any of them could hold (twice the deepest breadth-first tree of a component, plus one). When
/// even that bound stays below the route asked for over the first [`REACH_CHECK`] layouts, the route is out of
/// reach of this generator (a 64x64 request for 4096 cells would otherwise run through all `max_layouts`), and it
/// stops there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaveUp {
    pub layouts: u64,
    pub longest_possible: u32,
}

impl GaveUp {
    /// The error to show for a request with this `config`.
    pub fn message(&self, config: &MazeConfig) -> String {
        let (size, need) = (config.size, config.size.max(config.min_route));
        if self.layouts < config.max_layouts {
            format!(
                "none of the first {} {size}x{size} layouts can hold a route of {need} cells (the longest any could \
                 hold is at most {}); lower --min-route",
                self.layouts, self.longest_possible
            )
        } else {
            format!("no {size}x{size} maze with a route of {need} cells in {} layouts; lower --min-route", self.layouts)
        }
    }
}

impl MazeConfig {
    /// Maze-Hard's settings for 30x30.
    pub const HARD_30: MazeConfig = MazeConfig { size: 30, min_route: 110, attempts: 100, max_layouts: 10_000_000 };

    pub fn new(size: usize, min_route: usize) -> Self {
        MazeConfig { size, min_route, ..Self::HARD_30 }
    }

    /// Whether this generator can be asked for these mazes: a side of 2..=[`MAX_SIDE`] and a route that fits in
    /// the cells. The message names the size and the route as `size` and `min_route` (a flag or a field name).
    pub fn check(&self, size: &str, min_route: &str) -> Result<(), String> {
        let side = self.size;
        if !(2..=MAX_SIDE).contains(&side) {
            return Err(format!("{size} {side} must be 2..={MAX_SIDE} to generate mazes"));
        }
        // Squared only once bounded: 2^32 squared overflowed (a panic with overflow checks, as in tests).
        let cells = side * side;
        if self.min_route > cells {
            return Err(format!(
                "{min_route} {} is longer than a {side}x{side} maze has cells ({cells})",
                self.min_route
            ));
        }
        Ok(())
    }
}

/// The largest generated maze side (the breadth-first searches and the token counts stay small).
pub const MAX_SIDE: usize = 64;

/// Scratch buffers reused across layouts.
#[derive(Default)]
struct Scratch {
    component: Vec<u32>,
    diameter_bound: Vec<u32>,
    dist: Vec<u32>,
    queue: VecDeque<usize>,
}

impl Scratch {
    /// Label connected components of free cells, recording for each an upper bound on its diameter.
    fn components(&mut self, cells: &[u8], size: usize) {
        self.component.clear();
        self.component.resize(cells.len(), u32::MAX);
        self.diameter_bound.clear();
        self.dist.clear();
        self.dist.resize(cells.len(), 0);
        for seed in 0..cells.len() {
            if cells[seed] == WALL || self.component[seed] != u32::MAX {
                continue;
            }
            let id = self.diameter_bound.len() as u32;
            let mut depth = 0;
            self.component[seed] = id;
            self.dist[seed] = 0;
            self.queue.push_back(seed);
            while let Some(c) = self.queue.pop_front() {
                depth = depth.max(self.dist[c]);
                for n in neighbours(c, size) {
                    if cells[n] != WALL && self.component[n] == u32::MAX {
                        self.component[n] = id;
                        self.dist[n] = self.dist[c] + 1;
                        self.queue.push_back(n);
                    }
                }
            }
            self.diameter_bound.push(2 * depth);
        }
    }

    /// Steps from `s` to `g` (same component), by a breadth-first search that stops at `g`.
    fn distance(&mut self, cells: &[u8], size: usize, s: usize, g: usize) -> u32 {
        self.dist.clear();
        self.dist.resize(cells.len(), u32::MAX);
        self.queue.clear();
        self.dist[s] = 0;
        self.queue.push_back(s);
        while let Some(c) = self.queue.pop_front() {
            if c == g {
                break;
            }
            for n in neighbours(c, size) {
                if cells[n] != WALL && self.dist[n] == u32::MAX {
                    self.dist[n] = self.dist[c] + 1;
                    self.queue.push_back(n);
                }
            }
        }
        self.queue.clear();
        self.dist[g]
    }
}

/// Try one wall layout: the question and its route length, if some (S, G) pair passes the filter; otherwise an
/// upper bound on the longest route the layout could hold.
fn try_layout(config: &MazeConfig, rng: &mut Rng, scratch: &mut Scratch) -> Result<(Vec<u8>, usize), u32> {
    let n = config.size * config.size;
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let num_walls = rng.range_inclusive(n / 10 * 3, n / 10 * 5);
    let mut cells = vec![FREE; n];
    for &c in &order[..num_walls] {
        cells[c] = WALL;
    }
    let pool = &order[num_walls..];
    if pool.len() < 2 {
        return Err(pool.len() as u32);
    }
    let need = config.size.max(config.min_route).max(2) as u32;
    scratch.components(&cells, config.size);
    let longest_possible = scratch.diameter_bound.iter().max().map_or(0, |d| d + 1);
    for _ in 0..config.attempts {
        let i = rng.below(pool.len());
        let mut j = rng.below(pool.len() - 1);
        if j >= i {
            j += 1;
        }
        let (s, g) = (pool[i], pool[j]);
        let comp = scratch.component[s];
        if comp != scratch.component[g] || scratch.diameter_bound[comp as usize] + 1 < need {
            continue;
        }
        let route = scratch.distance(&cells, config.size, s, g) + 1;
        if route >= need {
            cells[s] = START;
            cells[g] = GOAL;
            return Ok((cells, route as usize));
        }
    }
    Err(longest_possible)
}

/// Maze `index` of the set seeded by `seed`: layouts are drawn from `(seed, index)` until one is accepted.
/// Returns the record and the number of layouts it took, or why it gave up: after `config.max_layouts` layouts,
/// or after [`REACH_CHECK`] when none of them could hold the route at all ([`GaveUp`]).
pub fn generate_one(config: &MazeConfig, seed: u64, index: usize) -> Result<(MazeRecord, u64), GaveUp> {
    assert!(config.size >= 2, "maze size {} is below 2", config.size);
    let need = config.size.max(config.min_route).max(2) as u32;
    let mut rng = Rng::for_item(seed, index as u64);
    let mut scratch = Scratch::default();
    let mut longest_possible = 0;
    for layouts in 1..=config.max_layouts {
        let (question, route) = match try_layout(config, &mut rng, &mut scratch) {
            Ok(accepted) => accepted,
            Err(longest) => {
                longest_possible = longest_possible.max(longest);
                if layouts == REACH_CHECK && longest_possible < need {
                    return Err(GaveUp { layouts, longest_possible });
                }
                continue;
            }
        };
        let answer = label(&question, config.size).expect("accepted mazes are solvable");
        let record = MazeRecord {
            source: format!("gen_{}x{}_seed{seed}_{index}_layout{layouts}", config.size, config.size),
            size: config.size,
            question,
            answer,
            rating: route as f64,
            row: 0,
            line: 0,
        };
        return Ok((record, layouts));
    }
    Err(GaveUp { layouts: config.max_layouts, longest_possible })
}

/// `count` mazes, made on rayon's pool (sized by the thread rule, `loopgrad_tensor::parallel`); maze `i` depends
/// only on `(seed, i)`, so the set is the same on any number of threads. The filter's acceptance rate falls
/// steeply with `min_route` (about 1e-3 per layout for Maze-Hard's 110 on 30x30); an error ([`GaveUp::message`],
/// of the first maze in order that cannot be had) when some maze cannot be had.
pub fn generate_mazes(config: &MazeConfig, count: usize, seed: u64) -> Result<Vec<MazeRecord>, String> {
    let mazes: Vec<_> = (0..count).into_par_iter().map(|i| generate_one(config, seed, i)).collect();
    mazes.into_iter().map(|m| m.map(|(record, _)| record).map_err(|gave_up| gave_up.message(config))).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{route_cells, score::valid_shortest_path};
    use super::*;

    #[test]
    fn the_same_mazes_on_one_and_two_threads() {
        let on_threads = |threads, count| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
            pool.install(|| generate_mazes(&MazeConfig::new(10, 14), count, 5).unwrap())
        };
        let one = on_threads(1, 16);
        let sequential: Vec<_> = (0..16).map(|i| generate_one(&MazeConfig::new(10, 14), 5, i).unwrap().0).collect();
        assert_eq!(one, sequential);
        assert_eq!(on_threads(2, 16), sequential);
        assert_eq!(on_threads(2, 5), sequential[..5], "maze i does not depend on the count");
    }

    #[test]
    fn generated_mazes_pass_the_filter_and_their_labels_are_shortest() {
        for (size, min_route) in [(9, 14), (15, 30), (30, 60)] {
            let config = MazeConfig::new(size, min_route);
            for m in generate_mazes(&config, 4, 1).unwrap() {
                let walls = m.question.iter().filter(|&&c| c == WALL).count();
                let n = size * size;
                assert!((n / 10 * 3..=n / 10 * 5).contains(&walls));
                let route = route_cells(&m.question, size).unwrap();
                assert!(route >= min_route.max(size) && route as f64 == m.rating);
                assert!(valid_shortest_path(&m.question, &m.answer, size));
            }
        }
    }

    #[test]
    fn deterministic() {
        let c = MazeConfig::new(12, 20);
        assert_eq!(generate_one(&c, 3, 5), generate_one(&c, 3, 5));
        assert_ne!(generate_one(&c, 3, 5).unwrap().0, generate_one(&c, 3, 6).unwrap().0);
    }

    #[test]
    fn impossible_routes_give_up() {
        let c = MazeConfig { max_layouts: 50, ..MazeConfig::new(5, 26) };
        let err = generate_mazes(&c, 1, 0).unwrap_err();
        assert!(err.contains("in 50 layouts; lower --min-route"), "{err}");
    }

    /// A route no layout can hold ends after the reach check, not after `max_layouts` (10 million 64x64 layouts
    /// would take hours), with the bound that ruled it out.
    #[test]
    fn out_of_reach_routes_stop_early() {
        let c = MazeConfig::new(64, 4096);
        let gave_up = generate_one(&c, 0, 0).unwrap_err();
        assert_eq!(gave_up.layouts, REACH_CHECK);
        assert!(gave_up.longest_possible < 4096);
        assert!(gave_up.message(&c).starts_with("none of the first 10000 64x64 layouts can hold a route of 4096"));
    }
}
