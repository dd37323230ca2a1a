//! The stable stand-in for `cargo fuzz` (which needs nightly): runs the same
//! targets (`fuzz/targets.rs`) over generated inputs for a bounded time and
//! catches what panics. Inputs are the targets' seeds mutated, their tokens
//! spliced together, and plain random bytes; an input that panicked is
//! saved under `target/fuzz-crashes/` and the run exits non-zero. Started by
//! `bench/fuzz`; not a test, never run by CI.
//!
//!   fuzz [--seconds N] [--seed S] [TARGET…]
//!   fuzz --input target/fuzz-crashes/cron-0.bin cron    # replay one

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[path = "../fuzz/targets.rs"]
mod targets;

use targets::{TARGETS, Target};

/// The message and place of the last panic (the hook keeps it quiet).
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// The longest input made (lint parses it; keep each run short).
const MAX_LEN: usize = 4096;

fn generate(rng: &mut StdRng, target: &Target, pool: &[Vec<u8>]) -> Vec<u8> {
    let token = |rng: &mut StdRng| {
        target
            .tokens
            .choose(rng)
            .copied()
            .unwrap_or("")
            .as_bytes()
            .to_vec()
    };
    let mut input = match rng.gen_range(0..10) {
        // Random bytes, short.
        0 => (0..rng.gen_range(0..48)).map(|_| rng.r#gen::<u8>()).collect(),
        // Tokens spliced together.
        1..=3 => (0..rng.gen_range(1..12)).flat_map(|_| token(rng)).collect(),
        // One token repeated a lot.
        4 => token(rng).repeat(rng.gen_range(1..(MAX_LEN / 4).max(2))),
        // A seed or an earlier input, mutated below.
        _ => pool.choose(rng).cloned().unwrap_or_default(),
    };
    for _ in 0..rng.gen_range(0..6) {
        let at = rng.gen_range(0..=input.len());
        match rng.gen_range(0..6) {
            0 => input.splice(at..at, token(rng)).for_each(drop),
            1 if !input.is_empty() => {
                let end = (at + rng.gen_range(1..8)).min(input.len());
                input.drain(at.min(end)..end).for_each(drop);
            }
            2 if at < input.len() => input[at] = rng.r#gen(),
            3 => input.insert(at, *b"0123456789 _.-=*/,\n\0".choose(rng).unwrap()),
            4 if !input.is_empty() => {
                let from = rng.gen_range(0..input.len());
                let to = (from + rng.gen_range(1..16)).min(input.len());
                let copy = input[from..to].to_vec();
                input.splice(at..at, copy).for_each(drop);
            }
            _ => input
                .splice(at..at, rng.r#gen::<u64>().to_string().into_bytes())
                .for_each(drop),
        }
    }
    input.truncate(MAX_LEN);
    input
}

/// One target for `budget`: (runs, crashes by panic message).
fn fuzz(target: &Target, seed: u64, budget: Duration) -> (u64, BTreeMap<String, Vec<u8>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pool: Vec<Vec<u8>> = target.seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut crashes = BTreeMap::new();
    let deadline = Instant::now() + budget;
    let mut runs = 0u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let input = generate(&mut rng, target, &pool);
            runs += 1;
            if panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
                let why = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
                // One input per distinct panic, the shortest.
                let keep = crashes
                    .get(&why)
                    .is_none_or(|old: &Vec<u8>| input.len() < old.len());
                if keep {
                    crashes.insert(why, input);
                }
            } else if pool.len() < 512 && rng.gen_bool(0.05) {
                pool.push(input);
            }
        }
    }
    (runs, crashes)
}

fn main() {
    let mut seconds = 60u64;
    let mut seed: u64 = rand::random();
    let mut chosen = Vec::new();
    let mut input: Option<Vec<u8>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).expect("--seconds N"),
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).expect("--seed S"),
            "--input" => input = Some(std::fs::read(args.next().expect("--input FILE")).expect("readable")),
            name => match TARGETS.iter().find(|t| t.name == name) {
                Some(t) => chosen.push(t),
                None => {
                    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                    eprintln!("unknown target {name:?}; targets: {}", names.join(", "));
                    std::process::exit(2);
                }
            },
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().collect();
    }
    if let Some(input) = input {
        // Replay a saved crash with the default panic output.
        for target in &chosen {
            println!("{}: {:?}", target.name, String::from_utf8_lossy(&input));
            (target.run)(&input);
        }
        return;
    }
    panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        // The first line only: assertion messages carry the input.
        let message = message
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = format!("{message}{place}");
        }
    }));

    let budget = Duration::from_secs(seconds) / chosen.len() as u32;
    println!(
        "fuzzing {} targets for {seconds} s, seed {seed} (replay with --seed {seed})",
        chosen.len()
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let mut found = 0;
    for (i, target) in chosen.iter().enumerate() {
        let (runs, crashes) = fuzz(target, seed.wrapping_add(i as u64), budget);
        println!(
            "{:<16} {runs:>10} inputs  {} distinct panics",
            target.name,
            crashes.len()
        );
        for (n, (why, input)) in crashes.iter().enumerate() {
            found += 1;
            let _ = std::fs::create_dir_all(&out);
            let file = out.join(format!("{}-{n}.bin", target.name));
            let _ = std::fs::write(&file, input);
            println!(
                "  panic: {why}\n  input: {:?}\n  saved: {}",
                String::from_utf8_lossy(input),
                file.display()
            );
        }
    }
    if found > 0 {
        std::process::exit(1);
    }
}
