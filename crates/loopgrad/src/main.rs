//! The `loopgrad` command line.

fn main() {
    println!("loopgrad: under construction");
}
