//! The fuzz targets on their seed corpus and on every crash found so far
//! (`fuzz/regressions/<target>/`): each seed is accepted by its loader (so the corpus
//! starts the fuzzer from valid input), each regression input is refused by an error naming
//! its file, and deterministic corruptions of every seed (truncations, bit flips,
//! overwritten header bytes) never panic.

use std::path::Path;

use l2m_fuzz::{Scratch, Target, run, seeds};

#[test]
fn every_seed_is_valid_input_for_its_loader() {
    let scratch = Scratch::new(None).expect("scratch");
    for t in Target::ALL {
        let seeds = seeds(t);
        assert!(!seeds.is_empty(), "{}: no seeds", t.name());
        for (name, bytes) in seeds {
            if let Err(e) = run(t, &bytes, &scratch) {
                panic!("{} seed {name} is refused: {e}", t.name());
            }
        }
    }
}

/// Truncations at a few lengths, single bit flips spread through the input, and a run of
/// 0xff bytes over the first bytes after the mode (a header's sizes), per seed.
fn corruptions(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = bytes.len();
    for cut in [1, 2, 9, 17, n / 2, n.saturating_sub(1)] {
        if cut < n {
            out.push(bytes[..cut].to_vec());
        }
    }
    for i in 0..16 {
        let at = 1 + (i * 7919) % n.saturating_sub(1).max(1);
        if at < n {
            let mut b = bytes.to_vec();
            b[at] ^= 1 << (i % 8);
            out.push(b);
        }
    }
    let mut b = bytes.to_vec();
    for x in b.iter_mut().skip(1).take(24) {
        *x = 0xff;
    }
    out.push(b);
    out
}

#[test]
fn corrupted_seeds_are_refused_without_a_panic() {
    let scratch = Scratch::new(None).expect("scratch");
    for t in Target::ALL {
        let mut refused = 0;
        let mut total = 0;
        for (_, bytes) in seeds(t) {
            for c in corruptions(&bytes) {
                total += 1;
                refused += usize::from(run(t, &c, &scratch).is_err());
            }
        }
        // Most corruptions break the format; a loader that accepted them all would not be
        // checking its input.
        assert!(
            refused > 0,
            "{}: none of {total} corrupted inputs was refused",
            t.name()
        );
    }
}

/// The scratch folder, as it appears in messages.
fn scratch_path(s: &Scratch) -> String {
    s.root().display().to_string()
}

#[test]
fn every_crash_found_by_fuzzing_stays_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let scratch = Scratch::new(None).expect("scratch");
    for t in Target::ALL {
        let dir = root.join(t.name());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).expect("read");
            // Each crashed a loader once: now it is refused, by a message naming the file.
            match run(t, &bytes, &scratch) {
                Ok(()) => panic!("{}: accepted", e.path().display()),
                Err(m) => assert!(m.contains(&*scratch_path(&scratch)), "{m}"),
            }
        }
    }
}
