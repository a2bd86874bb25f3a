//! A cursor over a command's arguments, in the manner of mini-redis's `Parse`.
//!
//! Handlers pull typed values in order; `finish` rejects leftovers with `ERR syntax error`.

use crate::error::{Error, Result};
use crate::num;

/// The arguments after the command name.
#[derive(Debug)]
pub struct Args<'a> {
    argv: &'a [Vec<u8>],
    pos: usize,
}

impl<'a> Args<'a> {
    /// A cursor over `argv`, which excludes the command name.
    pub fn new(argv: &'a [Vec<u8>]) -> Args<'a> {
        Args { argv, pos: 0 }
    }

    /// Arguments not yet taken.
    pub fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }

    /// True when every argument has been taken.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument, or `ERR syntax error` if there is none.
    pub fn next_bytes(&mut self) -> Result<&'a [u8]> {
        let arg = self.argv.get(self.pos).ok_or(Error::Syntax)?;
        self.pos += 1;
        Ok(arg)
    }

    /// The next argument as an owned vector.
    pub fn next_vec(&mut self) -> Result<Vec<u8>> {
        self.next_bytes().map(<[u8]>::to_vec)
    }

    /// The next argument without taking it.
    pub fn peek(&self) -> Option<&'a [u8]> {
        self.argv.get(self.pos).map(Vec::as_slice)
    }

    /// Takes the next argument if it equals `word`, ignoring ASCII case.
    pub fn eat(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(arg) if arg.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// The next argument as an `i64` (`ERR value is not an integer or out of range`).
    pub fn next_i64(&mut self) -> Result<i64> {
        num::parse_i64(self.next_bytes()?).ok_or(Error::NotInteger)
    }

    /// The next argument as an `f64` (`ERR value is not a valid float`).
    pub fn next_f64(&mut self) -> Result<f64> {
        num::parse_f64(self.next_bytes()?).ok_or(Error::NotFloat)
    }

    /// All arguments not yet taken.
    pub fn rest(&mut self) -> &'a [Vec<u8>] {
        let rest = &self.argv[self.pos..];
        self.pos = self.argv.len();
        rest
    }

    /// Fails with `ERR syntax error` if arguments are left over.
    pub fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Syntax)
        }
    }
}

/// True if `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
