//! COMMANDS.md is generated from the command tables and the script files, and this test
//! fails when it is stale (regenerate with `REDLITE_WRITE_DOCS=1 cargo test -p
//! redlite-server --test command_docs`, or `make docs`). Every example shown is a step of
//! tests/scripts/*.redis, whose expected replies are checked against a real redis-server
//! by tests/test_differential.py, so the examples cannot lie.

use std::collections::BTreeMap;
use std::fmt::Write;

use redlite::command::{self, flag, Spec};
use redlite_server::admin;

/// Core commands with no script example, and why.
const NO_SCRIPT_EXAMPLE: &[(&str, &str)] = &[
    ("time", "its reply is the clock"),
    (
        "keyinfo",
        "its reply holds creation times; see README (Keys and expiry)",
    ),
    ("vacuum", "Redlite's own; see README (Keys and expiry)"),
    ("autovacuum", "Redlite's own; see README (Keys and expiry)"),
    (
        "history",
        "its replies hold timestamps; see README (History and time travel)",
    ),
];

fn examples() -> BTreeMap<String, Vec<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scripts");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "redis"))
        .collect();
    files.sort();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in files {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("~ ").unwrap_or(line);
            let name = line.split(' ').next().unwrap_or("").to_lowercase();
            let list = out.entry(name).or_default();
            if list.len() < 2 {
                list.push(line.to_string());
            }
        }
    }
    out
}

fn flags(spec: &Spec) -> String {
    let names: Vec<&str> = flag::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join(", ")
}

fn generate() -> String {
    let ex = examples();
    let mut groups: BTreeMap<&str, Vec<&Spec>> = BTreeMap::new();
    for spec in command::all().chain(admin::SERVER_COMMANDS.iter()) {
        groups.entry(spec.group).or_default().push(spec);
    }
    let mut out = String::from(
        "# Redlite commands\n\n\
         Generated from the command tables by `server/tests/command_docs.rs`; do not edit.\n\
         Each example is a step of `tests/scripts/*.redis`, checked against a real\n\
         redis-server 7.0.15 by the test suite (`=>` shows the reply as redis-cli prints\n\
         it). Commands marked *server* are answered by redlite-server only; every other\n\
         command also runs through SQL as `redis('NAME', ...)`.\n",
    );
    for (group, mut specs) in groups {
        specs.sort_by_key(|s| s.name);
        let _ = write!(out, "\n## {group}\n\n");
        for spec in specs {
            let server_only = spec.run.is_none();
            let _ = writeln!(
                out,
                "- **{}**{} (arity {}{}): {}",
                spec.name.to_uppercase(),
                if server_only { " *server*" } else { "" },
                spec.arity,
                match flags(spec).as_str() {
                    "" => String::new(),
                    f => format!("; {f}"),
                },
                spec.summary
            );
            for e in ex.get(spec.name).into_iter().flatten() {
                let _ = writeln!(out, "  `{e}`");
            }
        }
    }
    out
}

#[test]
fn commands_md_is_current_and_every_core_command_has_an_example() {
    let ex = examples();
    let missing: Vec<&str> = command::all()
        .map(|s| s.name)
        .filter(|n| !ex.contains_key(*n) && !NO_SCRIPT_EXAMPLE.iter().any(|(m, _)| m == n))
        .collect();
    assert!(
        missing.is_empty(),
        "commands without a script example: {missing:?}"
    );
    for (name, _) in NO_SCRIPT_EXAMPLE {
        assert!(
            !ex.contains_key(*name),
            "{name} has an example now: drop it from the list"
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../COMMANDS.md");
    let want = generate();
    if std::env::var_os("REDLITE_WRITE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(have == want, "COMMANDS.md is stale: run `make docs`");
}
