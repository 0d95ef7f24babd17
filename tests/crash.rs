//! Real crashes for tests: runs of a checkpointing job killed with SIGKILL
//! at random moments and while a checkpoint is being written.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// The newest completed checkpoint (`chk-<id>` with its manifest) in the
/// checkpoint directory `dir`.
pub fn latest_checkpoint(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".inprogress") && dir.join(n).join("_manifest.json").exists())
        .filter_map(|n| n.strip_prefix("chk-")?.parse().ok())
        .max()
}

/// Whether a checkpoint is being written in `dir`.
pub fn checkpoint_in_progress(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with(".inprogress")))
        .unwrap_or(false)
}

/// The seed of a test's kill times: `WEIR_TEST_SEED` replays a failed run.
pub fn seed() -> u64 {
    std::env::var("WEIR_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    })
}

/// What [`kill_repeatedly`] saw.
pub struct Kills {
    /// How many kills landed while a checkpoint was being written.
    pub during_checkpoint: usize,
    /// Each killed run's standard error.
    pub logs: Vec<String>,
}

/// Starts the job (`spawn`, with its standard error piped) `kills` times
/// and kills each run with SIGKILL. Every kill comes after the run completed
/// a checkpoint of its own (so the next run has something new to resume
/// from, however slowly a loaded machine starts it, and an unfinished
/// checkpoint of the run before has been cleaned away); then every other
/// kill waits for a checkpoint being written in `checkpoints`, the others
/// come at a random time up to 200 ms later.
pub fn kill_repeatedly(spawn: impl Fn() -> Child, checkpoints: &Path, kills: usize, seed: u64) -> Kills {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let mut seen = Kills { during_checkpoint: 0, logs: Vec::new() };
    for kill in 0..kills {
        let before = latest_checkpoint(checkpoints);
        let mut child = spawn();
        let wait_for_checkpoint = kill % 2 == 1;
        let mut deadline = None;
        let caught = loop {
            if child.try_wait().unwrap().is_some() {
                panic!("the job ended before kill #{} (seed {seed}): make it longer", kill + 1);
            }
            let checkpointed = latest_checkpoint(checkpoints) > before;
            if wait_for_checkpoint && checkpointed && checkpoint_in_progress(checkpoints) {
                break true;
            }
            if !wait_for_checkpoint && deadline.is_none() && checkpointed {
                deadline = Some(Instant::now() + Duration::from_millis(rng.random_range(0..200)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        if caught && checkpoint_in_progress(checkpoints) {
            seen.during_checkpoint += 1;
        }
        seen.logs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    seen
}
