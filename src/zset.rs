//! Sorted sets: storage in `redlite_zsets`, then the command handlers.

use crate::command::Spec;
use crate::vtab::TableFn;

/// This module's command rows.
pub static COMMANDS: &[Spec] = &[];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[];
