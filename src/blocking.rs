//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP): in the core, each is one non-blocking attempt that replies `NilArray` when
//! there is nothing to take; the server waits and retries, SQL reports that it would wait.

use crate::command::Spec;

/// This module's command rows.
pub static COMMANDS: &[Spec] = &[];
