//! Sets: storage in `redlite_sets`, then the command handlers.

use crate::command::Spec;
use crate::vtab::TableFn;

/// This module's command rows.
pub static COMMANDS: &[Spec] = &[];

/// This module's table-valued functions.
pub static TABLE_FNS: &[TableFn] = &[];
