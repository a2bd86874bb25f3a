//! Runs every `tests/scripts/*.redis` file through the core's executor and compares each
//! reply with the expectation written in the file. The same files run against a real
//! redis-server in `tests/test_differential.py`, which keeps the expectations honest.

mod common;

use common::{render, split, Db};

fn run_script(name: &str) {
    let path = format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut db = Db::new();
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (unordered, line) = match line.strip_prefix("~ ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (cmd, want) = line.split_once(" => ").expect("a ' => ' in every step");
        let args = split(cmd);
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut reply = db.exec(&refs);
        if unordered {
            if let redlite::Reply::Array(items) = &mut reply {
                items.sort_by_key(render);
            }
        }
        let got = render(&reply);
        if got != want {
            failures.push(format!(
                "{name}:{}: {cmd}\n   want {want}\n    got {got}",
                n + 1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn strings_script() {
    run_script("strings.redis");
}

#[test]
fn keys_script() {
    run_script("keys.redis");
}
