//! The RESP request parser on arbitrary bytes: never panics, never allocates from a
//! declared length, and gives the same commands and the same error whether the bytes
//! arrive whole or split at arbitrary points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redlite_server::protocol::{Limits, RequestParser};

fn run(chunks: &[&[u8]], limits: &Limits) -> (Vec<Vec<Vec<u8>>>, Option<String>) {
    let mut parser = RequestParser::new();
    let mut commands = Vec::new();
    for chunk in chunks {
        let mut buf = chunk.to_vec();
        loop {
            match parser.parse(&mut buf, limits) {
                Ok(Some(argv)) => commands.push(argv),
                Ok(None) => break,
                Err(e) => return (commands, Some(format!("{e:?}"))),
            }
        }
    }
    (commands, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, input)) = data.split_first() else { return };
    let limits = Limits {
        authenticated: split_seed & 0x80 == 0,
        max_inline: 1024,
        ..Limits::default()
    };
    let whole = run(&[input], &limits);
    // Split into pieces of 1..=8 bytes, the sizes cycling from the seed.
    let mut chunks = Vec::new();
    let (mut at, mut step) = (0, split_seed as usize);
    while at < input.len() {
        let len = 1 + step % 8;
        chunks.push(&input[at..(at + len).min(input.len())]);
        at += len;
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    let split = run(&chunks, &limits);
    // The 64 KiB-style inline limit depends on how bytes arrive (as in Redis), so only
    // compare when neither run hit it.
    let inline_limit = |r: &(Vec<Vec<Vec<u8>>>, Option<String>)| {
        r.1.as_deref().is_some_and(|e| e.contains("TooBig"))
    };
    if !inline_limit(&whole) && !inline_limit(&split) {
        assert_eq!(whole, split);
    }
});
