//! Coalesced WAL writes for the writer's connection: `redlite-walbuf`, a VFS over the
//! default one that gathers a transaction's WAL frames in memory and gives them to the
//! kernel in one `pwrite` once the commit frame is complete.
//!
//! SQLite writes every WAL frame with two writes, its 24-byte header and then its page,
//! so a group commit of 800 SETs made some 4,000 `pwrite` calls. Each pays for a system
//! call, the file's lock and the page-cache lookups of a partial page. One write per
//! commit copies the same bytes.
//!
//! What keeps this safe:
//! - **Nothing is published before it is written.** Other connections find frames through
//!   the WAL index's header, which SQLite writes after the frames (`walIndexWriteHdr`).
//!   The commit frame is the last frame of a commit. The buffer is flushed as soon as that
//!   frame's page is in it, inside the `xWrite` call, so a failed write fails the commit
//!   the way a failed frame write always did.
//!   - The header of a commit frame is recognised by its size (24 bytes, where the WAL
//!     file's own header is 32) and its non-zero "database size after commit" field.
//!   - After the commit frame, until the header is published, SQLite may still rewrite
//!     checksums or pad a sector (`walRewriteChecksums`, `synchronous=FULL` without
//!     power-safe overwrite). Those writes go straight through.
//!   - As a safety net, the database file's `xShmBarrier` flushes too. SQLite calls it
//!     between the two copies of the index header it writes to publish a commit.
//! - **Reads see the writes.** Any other operation on the WAL file (read, sync, truncate,
//!   size, file control, close) flushes first. So does a write that does not continue the
//!   buffered run.
//! - **A crash loses nothing committed.** What is buffered belongs to a transaction that
//!   has not committed; what has committed is in the kernel, as before, and `xSync`
//!   flushes before it syncs.
//!
//! Only files the writer's connection opens through this VFS are affected. Readers, the
//! checkpointer and other processes use the default VFS and see the same bytes.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::{align_of, size_of};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub const NAME: &CStr = c"redlite-walbuf";

/// Size of a WAL frame header.
const FRAME_HEADER: usize = 24;

/// A transaction larger than this is written before its commit, in pieces.
const MAX_BUFFER: usize = 4 << 20;

/// The largest write handed to the default VFS at once: the unix VFS writes at most
/// 0x1ffff bytes per system call (`seekAndWriteFd` masks the length), and a longer write
/// whose remainder masks to 0 fails as a full disk.
const MAX_WRITE: usize = 0x1f000;

/// What this VFS keeps after the default VFS's own file object (which starts the
/// allocation, so the default VFS's methods can be called with the same pointer).
enum Extra {
    /// The main database file: the WAL file it is linked with, to flush at the barrier.
    Db {
        real: *const ffi::sqlite3_io_methods,
        wal: *mut ffi::sqlite3_file,
    },
    /// The WAL file and its buffered run of writes.
    Wal {
        real: *const ffi::sqlite3_io_methods,
        /// The database file's name pointer, the key it is linked under.
        db: usize,
        buf: Vec<u8>,
        /// File offset of `buf[0]`.
        start: i64,
        /// The last buffered write was a commit frame's header.
        commit_header: bool,
        /// The commit frame has been written: write through until the commit is published.
        committed: bool,
    },
}

struct Vfs {
    parent: *mut ffi::sqlite3_vfs,
    /// Offset of [`Extra`] in a file object.
    extra_at: usize,
}

// SAFETY: the parent VFS is a process-wide SQLite object, valid for the program's life.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Result<Vfs, c_int>> = OnceLock::new();

/// Commits whose frames were written at their commit frame (for tests).
pub static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Barriers that found frames still buffered: SQLite's sequence never leaves any (for
/// tests).
pub static AT_BARRIER: AtomicU64 = AtomicU64::new(0);

/// Database files awaiting or holding their WAL, by their name pointer. SQLite gives a
/// WAL file's `xOpen` a name from which `sqlite3_filename_database` returns the very
/// pointer the database file was opened with, so the two meet here.
static DB_FILES: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

/// Registers the VFS (once; not as the default). Returns SQLite's error code on failure.
pub fn register() -> Result<(), c_int> {
    let vfs = VFS.get_or_init(|| unsafe {
        let parent = ffi::sqlite3_vfs_find(ptr::null());
        if parent.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        let align = align_of::<Extra>();
        let extra_at = ((*parent).szOsFile as usize).div_ceil(align) * align;
        // A copy of the parent with our name, size and xOpen. Its other methods ignore
        // the VFS pointer they are given (the default VFS's xOpen alone reads it, and is
        // called with the parent's).
        let mut ours: ffi::sqlite3_vfs = ptr::read(parent);
        ours.zName = NAME.as_ptr();
        ours.szOsFile = (extra_at + size_of::<Extra>()) as c_int;
        ours.pNext = ptr::null_mut();
        ours.pAppData = ptr::null_mut();
        ours.xOpen = Some(x_open);
        let ours = Box::into_raw(Box::new(ours));
        let rc = ffi::sqlite3_vfs_register(ours, 0);
        if rc != ffi::SQLITE_OK {
            drop(Box::from_raw(ours));
            return Err(rc);
        }
        Ok(Vfs { parent, extra_at })
    });
    vfs.as_ref().map(|_| ()).map_err(|rc| *rc)
}

fn vfs() -> &'static Vfs {
    match VFS.get() {
        Some(Ok(v)) => v,
        _ => unreachable!("files are opened through the VFS only after it registered"),
    }
}

unsafe fn extra<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Extra {
    &mut *((file as *mut u8).add(vfs().extra_at) as *mut Extra)
}

unsafe fn real(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    match extra(file) {
        Extra::Db { real, .. } | Extra::Wal { real, .. } => &**real,
    }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let v = vfs();
    let rc = ((*v.parent).xOpen.expect("the default VFS opens files"))(
        v.parent, name, file, flags, out_flags,
    );
    if rc != ffi::SQLITE_OK || (*file).pMethods.is_null() || name.is_null() {
        return rc;
    }
    let real = (*file).pMethods;
    let slot = (file as *mut u8).add(v.extra_at) as *mut Extra;
    let mut files = DB_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let files = files.get_or_insert_with(HashMap::new);
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        ptr::write(
            slot,
            Extra::Db {
                real,
                wal: ptr::null_mut(),
            },
        );
        files.insert(name as usize, file as usize);
        (*file).pMethods = &DB_METHODS;
    } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
        let db = ffi::sqlite3_filename_database(name) as usize;
        ptr::write(
            slot,
            Extra::Wal {
                real,
                db,
                buf: Vec::new(),
                start: 0,
                commit_header: false,
                committed: false,
            },
        );
        if let Some(&db_file) = files.get(&db) {
            if let Extra::Db { wal, .. } = extra(db_file as *mut ffi::sqlite3_file) {
                *wal = file;
            }
        }
        (*file).pMethods = &WAL_METHODS;
    }
    // Other files (temporary ones) keep the default VFS's methods and never read Extra.
    rc
}

/// Writes the buffered run, if any. The buffer is emptied either way: after a failed
/// write SQLite fails the transaction.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    let Extra::Wal {
        real, buf, start, ..
    } = extra(file)
    else {
        return ffi::SQLITE_OK;
    };
    if buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    let write = (**real).xWrite.expect("files write");
    let mut rc = ffi::SQLITE_OK;
    let mut offset = *start;
    for piece in buf.chunks(MAX_WRITE) {
        rc = write(
            file,
            piece.as_ptr() as *const c_void,
            piece.len() as c_int,
            offset,
        );
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += piece.len() as i64;
    }
    buf.clear();
    if buf.capacity() > MAX_BUFFER {
        buf.shrink_to(MAX_BUFFER);
    }
    rc
}

// ---------------------------------------------------------------------------------------
// The WAL file's methods

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (write, committed, continues) = match extra(file) {
        Extra::Wal {
            real,
            buf,
            start,
            committed,
            ..
        } => (
            (**real).xWrite.expect("files write"),
            *committed,
            buf.is_empty() || offset == *start + buf.len() as i64,
        ),
        Extra::Db { .. } => unreachable!("WAL methods are set on WAL files only"),
    };
    if committed {
        return write(file, data, amount, offset);
    }
    if !continues {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let bytes = std::slice::from_raw_parts(data as *const u8, amount as usize);
    let Extra::Wal {
        buf,
        start,
        commit_header,
        committed,
        ..
    } = extra(file)
    else {
        unreachable!("WAL methods are set on WAL files only")
    };
    if buf.is_empty() {
        *start = offset;
    }
    buf.extend_from_slice(bytes);
    let flush_now = if bytes.len() == FRAME_HEADER {
        // Bytes 4..8 of a frame header: the database size after a commit, else 0.
        *commit_header = bytes[4..8] != [0, 0, 0, 0];
        false
    } else if std::mem::take(commit_header) {
        *committed = true;
        COMMITS.fetch_add(1, Ordering::Relaxed);
        true
    } else {
        buf.len() >= MAX_BUFFER
    };
    if flush_now {
        flush(file)
    } else {
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    let flushed = flush(file);
    let Extra::Wal { real, db, .. } = extra(file) else {
        unreachable!("WAL methods are set on WAL files only")
    };
    let (real, db) = (*real, *db);
    // Unlink from the database file, which SQLite closes after its WAL.
    if let Some(files) = DB_FILES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        if let Some(&db_file) = files.get(&db) {
            if let Extra::Db { wal, .. } = extra(db_file as *mut ffi::sqlite3_file) {
                if *wal == file {
                    *wal = ptr::null_mut();
                }
            }
        }
    }
    ptr::drop_in_place((file as *mut u8).add(vfs().extra_at) as *mut Extra);
    (*file).pMethods = real;
    let rc = ((*real).xClose.expect("files close"))(file);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        rc
    }
}

/// Defines WAL methods that write what is buffered, then call the default VFS's method.
macro_rules! flush_then {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            (real(file).$field.expect(stringify!($field)))(file, $($arg),*)
        }
    };
}

flush_then!(wal_read, xRead, (data: *mut c_void, amount: c_int, offset: i64));
flush_then!(wal_truncate, xTruncate, (size: i64));
flush_then!(wal_sync, xSync, (flags: c_int));
flush_then!(wal_file_size, xFileSize, (size: *mut i64));
flush_then!(wal_file_control, xFileControl, (op: c_int, arg: *mut c_void));

// ---------------------------------------------------------------------------------------
// The database file's methods: the default VFS's, and a flush at the barrier.

unsafe extern "C" fn db_shm_barrier(file: *mut ffi::sqlite3_file) {
    if let Extra::Db { wal, .. } = extra(file) {
        if !wal.is_null() {
            let wal = *wal;
            if matches!(extra(wal), Extra::Wal { buf, .. } if !buf.is_empty()) {
                AT_BARRIER.fetch_add(1, Ordering::Relaxed);
            }
            if flush(wal) != ffi::SQLITE_OK {
                // Not reached by SQLite's own sequence, which flushes at the commit frame
                // (see the module's docs); a barrier cannot report an error.
                tracing::error!("a buffered WAL write failed at a barrier");
            }
            if let Extra::Wal { committed, .. } = extra(wal) {
                *committed = false;
            }
        }
    }
    if let Some(barrier) = real(file).xShmBarrier {
        barrier(file)
    }
}

unsafe extern "C" fn db_close(file: *mut ffi::sqlite3_file) -> c_int {
    let real = real(file);
    if let Some(files) = DB_FILES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        files.retain(|_, f| *f != file as usize);
    }
    ptr::drop_in_place((file as *mut u8).add(vfs().extra_at) as *mut Extra);
    (*file).pMethods = real;
    (real.xClose.expect("files close"))(file)
}

/// Defines pass-through methods that call the default VFS's method of the same name.
macro_rules! pass {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            (real(file).$field.expect(stringify!($field)))(file, $($arg),*)
        }
    };
}

pass!(p_read, xRead, (data: *mut c_void, amount: c_int, offset: i64) -> c_int);
pass!(p_write, xWrite, (data: *const c_void, amount: c_int, offset: i64) -> c_int);
pass!(p_truncate, xTruncate, (size: i64) -> c_int);
pass!(p_sync, xSync, (flags: c_int) -> c_int);
pass!(p_file_size, xFileSize, (size: *mut i64) -> c_int);
pass!(p_lock, xLock, (level: c_int) -> c_int);
pass!(p_unlock, xUnlock, (level: c_int) -> c_int);
pass!(p_check_reserved_lock, xCheckReservedLock, (out: *mut c_int) -> c_int);
pass!(p_file_control, xFileControl, (op: c_int, arg: *mut c_void) -> c_int);
pass!(p_sector_size, xSectorSize, () -> c_int);
pass!(p_device_characteristics, xDeviceCharacteristics, () -> c_int);
pass!(p_shm_map, xShmMap, (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
pass!(p_shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int) -> c_int);
pass!(p_shm_unmap, xShmUnmap, (delete: c_int) -> c_int);
pass!(p_fetch, xFetch, (offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int);
pass!(p_unfetch, xUnfetch, (offset: i64, page: *mut c_void) -> c_int);

unsafe extern "C" fn p_shm_barrier(file: *mut ffi::sqlite3_file) {
    if let Some(barrier) = real(file).xShmBarrier {
        barrier(file)
    }
}

/// Version 3 methods, as the default (unix) VFS's are.
static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(db_close),
    xRead: Some(p_read),
    xWrite: Some(p_write),
    xTruncate: Some(p_truncate),
    xSync: Some(p_sync),
    xFileSize: Some(p_file_size),
    xLock: Some(p_lock),
    xUnlock: Some(p_unlock),
    xCheckReservedLock: Some(p_check_reserved_lock),
    xFileControl: Some(p_file_control),
    xSectorSize: Some(p_sector_size),
    xDeviceCharacteristics: Some(p_device_characteristics),
    xShmMap: Some(p_shm_map),
    xShmLock: Some(p_shm_lock),
    xShmBarrier: Some(db_shm_barrier),
    xShmUnmap: Some(p_shm_unmap),
    xFetch: Some(p_fetch),
    xUnfetch: Some(p_unfetch),
};

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(p_lock),
    xUnlock: Some(p_unlock),
    xCheckReservedLock: Some(p_check_reserved_lock),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(p_sector_size),
    xDeviceCharacteristics: Some(p_device_characteristics),
    xShmMap: Some(p_shm_map),
    xShmLock: Some(p_shm_lock),
    xShmBarrier: Some(p_shm_barrier),
    xShmUnmap: Some(p_shm_unmap),
    xFetch: Some(p_fetch),
    xUnfetch: Some(p_unfetch),
};
