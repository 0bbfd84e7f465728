//! `cargo run -p anyws-conformance --example describe -- SEED...`: prints the scenarios of
//! the given seeds (client plan, peer script, and the script's URL form).
fn main() {
    for arg in std::env::args().skip(1) {
        let Ok(seed) = arg.parse() else {
            eprintln!("not a seed: {arg}");
            std::process::exit(2);
        };
        let sc = anyws_conformance::generate(seed);
        print!("{}", sc.describe());
        println!("  script: {}\n", sc.peer.encode());
    }
}
