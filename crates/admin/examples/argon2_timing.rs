//! Prints what one argon2id hash and one verification of a key secret cost with the
//! gateway's parameters. Run in release: `cargo run --release -p ciq-admin --example argon2_timing`.

use std::time::Instant;

use ciq_admin::SecretHasher;
use ciq_admin::hashing::{M_COST_KIB, P_COST, T_COST};

fn main() {
    let hasher = SecretHasher::default();
    let (_, parts) = ciq_admin::key::generate();
    let rounds = 20;
    let start = Instant::now();
    let mut phc = String::new();
    for _ in 0..rounds {
        phc = hasher.hash(parts.secret()).expect("hash");
    }
    let hash_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    let start = Instant::now();
    for _ in 0..rounds {
        assert!(hasher.verify(parts.secret(), &phc));
    }
    let verify_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    println!(
        "argon2id m={M_COST_KIB} KiB t={T_COST} p={P_COST}: hash {hash_ms:.1} ms, verify {verify_ms:.1} ms (mean of {rounds})"
    );
}
