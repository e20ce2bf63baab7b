//! Every input fuzzing kept (`fuzz/regressions/TARGET/`) is replayed
//! through the same entry points the fuzzers drive: none may panic again.

use std::path::Path;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

#[test]
fn fuzz_regressions_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let targets: [(&str, Target); 4] = [
        ("yaml", lethe::fuzzing::yaml),
        ("plan_file", lethe::fuzzing::plan_file),
        ("plugin_json", lethe::fuzzing::plugin_json),
        ("condition", lethe::fuzzing::condition),
    ];
    let mut replayed = 0;
    for (name, run) in targets {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("{} is missing", dir.display());
        };
        for e in entries {
            let path = e.expect("a directory entry").path();
            let data = std::fs::read(&path).expect("a regression input");
            run(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 4, "only {replayed} regression inputs");
}
