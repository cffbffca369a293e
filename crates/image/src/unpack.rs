//! Safe unpacking of an image layer (an uncompressed tar stream) into a directory that
//! overlayfs can use as a lowerdir.
//!
//! A layer is untrusted input: its entry names may hold `..` or be absolute, and an earlier
//! entry may plant a symlink (`evil -> /etc`) that a later one (`evil/passwd`) tries to write
//! through. So nothing here ever walks a path string from the layer in the host's namespace:
//!
//! - `target` is opened once. Each entry's name is cleaned lexically (like Go's
//!   `filepath.Clean`, as Docker and containerd do) into a path relative to it, and its parent
//!   directory is opened with `openat2(RESOLVE_IN_ROOT)`, which makes the kernel treat `target`
//!   as `/` for the whole walk: symlinks met on the way, absolute or full of `..`, stay inside.
//!   Missing parents are made with `mkdirat` relative to a directory resolved the same way.
//! - The entry itself is made and changed only by its name relative to that parent, with `*at`
//!   calls that never follow a symlink in the final component (`O_EXCL|O_NOFOLLOW`,
//!   `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`).
//! - A hardlink's target is resolved the same way, so `/etc/shadow` means `target/etc/shadow`.
//!
//! Whiteouts are converted to overlayfs's format as they are read: `.wh.NAME` becomes a 0:0
//! character device `NAME`, and `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr.

use std::cmp::Reverse;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use nix::NixPath;
use tar::EntryType;

/// What a layer added to the target directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Entries applied: files, directories, links, nodes, whiteouts and opaque markers.
    pub entries: u64,
    /// Bytes of regular file contents written.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("opening unpack target {}: {source}", path.display())]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The tar stream itself is unreadable: a bad header checksum, a truncated stream, or an
    /// error from the reader (say, decompression).
    #[error("reading the layer's tar stream: {source}")]
    Archive {
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?}: {op}: {source}")]
    Entry {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Unpacks the uncompressed tar stream `layer` into `target`, an existing empty directory,
/// in the layout overlayfs expects of a lowerdir (see the module's documentation).
///
/// Reads `layer` to its very end, past the tar's end-of-archive marker, so that a hashing
/// reader wrapped around it has seen every byte when this returns. Device nodes are skipped
/// when the kernel refuses them with `EPERM` (unprivileged, e.g. in a user namespace): the
/// runtime gives a container its own `/dev`. Whiteouts are never skipped, since dropping one
/// would bring back a file the image deleted. Needs `/proc` mounted, for xattrs.
pub fn unpack(layer: impl Read, target: &Path) -> Result<Stats, UnpackError> {
    let root = open(target, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| UnpackError::Target { path: target.to_path_buf(), source: e.into() })?;
    let mut unpacker = Unpacker {
        root,
        // Reused for every file: large reads keep a decompressor and the disk streaming.
        buf: vec![0; 1 << 20],
        path: Vec::new(),
        xattrs: Vec::new(),
        dir_times: Vec::new(),
        stats: Stats::default(),
    };
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries().map_err(|source| UnpackError::Archive { source })? {
        let mut entry = entry.map_err(|source| UnpackError::Archive { source })?;
        match unpacker.apply(&mut entry) {
            Ok(Outcome::Applied) => unpacker.stats.entries += 1,
            Ok(Outcome::Skipped) => {}
            Err(fail) => return Err(fail.at(&entry.path_bytes())),
        }
    }
    unpacker.set_dir_times()?;
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|source| UnpackError::Archive { source })?;
    Ok(unpacker.stats)
}

/// The state of one unpack: the target and buffers reused from entry to entry.
struct Unpacker {
    root: OwnedFd,
    buf: Vec<u8>,
    /// The current entry's cleaned path.
    path: Vec<u8>,
    /// The current entry's xattrs, from its PAX header.
    xattrs: Vec<(CString, Vec<u8>)>,
    /// Directories and their mtimes, set at the end: writing into a directory changes its mtime.
    dir_times: Vec<(Vec<u8>, TimeSpec)>,
    stats: Stats,
}

enum Outcome {
    Applied,
    Skipped,
}

/// Why one entry failed; `unpack` adds the entry's name.
enum Fail {
    Io { op: &'static str, source: io::Error },
    Invalid(String),
}

impl Fail {
    fn invalid(reason: &str) -> Fail {
        Fail::Invalid(reason.to_string())
    }

    fn at(self, path: &[u8]) -> UnpackError {
        let path = PathBuf::from(OsStr::from_bytes(path));
        match self {
            Fail::Io { op, source } => UnpackError::Entry { path, op, source },
            Fail::Invalid(reason) => UnpackError::Invalid { path, reason },
        }
    }
}

/// Maps a failed syscall to a `Fail` naming what was being done.
fn sys(op: &'static str) -> impl FnOnce(Errno) -> Fail {
    move |e| Fail::Io { op, source: e.into() }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> Fail {
    move |source| Fail::Io { op, source }
}

/// An entry's owner, permission bits and mtime.
struct Meta {
    uid: u32,
    gid: u32,
    mode: Mode,
    mtime: TimeSpec,
}

/// How an entry's metadata is applied to what it made.
#[derive(PartialEq)]
enum Node {
    /// Times are set at the end, once nothing more is written into it.
    Dir,
    /// Has no mode of its own (Linux ignores a symlink's permission bits).
    Symlink,
    Other,
}

impl Unpacker {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<Outcome, Fail> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Defaults for the whole archive (git archive writes a commit id there): no file.
            return Ok(Outcome::Skipped);
        }
        let raw = entry.path_bytes();
        if raw.is_empty() {
            return Err(Fail::invalid("empty name"));
        }
        // Old (v7) tars mark a directory only by its trailing slash.
        let is_dir = kind.is_dir() || (kind == EntryType::Regular && raw.ends_with(b"/"));
        clean(&raw, &mut self.path);
        drop(raw);
        // Taken out for the call, which borrows `self` mutably; put back to reuse its buffer.
        let path = std::mem::take(&mut self.path);
        let result = self.apply_at(entry, kind, is_dir, &path);
        self.path = path;
        result
    }

    /// Applies `entry`, whose cleaned path is `path`.
    fn apply_at<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        kind: EntryType,
        is_dir: bool,
        path: &[u8],
    ) -> Result<Outcome, Fail> {
        let Some((parent, name)) = split(path) else {
            // `./` itself: target's own metadata belongs to whoever made it.
            return match is_dir {
                true => Ok(Outcome::Skipped),
                false => Err(Fail::invalid("names the layer's root but is not a directory")),
            };
        };
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return self.whiteout(parent, hidden);
        }
        let meta = self.read_meta(entry)?;
        let dir = self.parent_dir(parent)?;
        let dir = dir.as_fd();
        if is_dir {
            return self.directory(dir, name, &meta, path);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(dir, name, &meta, entry)
            }
            EntryType::Symlink => {
                let link =
                    entry.link_name_bytes().ok_or_else(|| Fail::invalid("symlink without a target"))?;
                // The text is kept as is: it is only ever followed inside the container's root.
                replace(dir, name, "creating symlink (symlinkat)", || symlinkat(&*link, dir, name))?;
                self.set_metadata(dir, name, &meta, Node::Symlink)?;
                Ok(Outcome::Applied)
            }
            EntryType::Link => {
                let link =
                    entry.link_name_bytes().ok_or_else(|| Fail::invalid("hardlink without a target"))?;
                self.hardlink(dir, name, &link)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.node(dir, name, &meta, entry, kind),
            other => Err(Fail::Invalid(format!("unsupported entry type {:?}", other.as_byte() as char))),
        }
    }

    /// Reads the entry's owner, mode and mtime, and its xattrs into `self.xattrs`. (The tar
    /// crate has already applied PAX `uid` and `gid` to the header.)
    fn read_meta<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<Meta, Fail> {
        let header = entry.header();
        let id = |v: io::Result<u64>| -> Result<u32, Fail> {
            let v = v.map_err(io_err("reading header"))?;
            u32::try_from(v).map_err(|_| Fail::Invalid(format!("owner id {v} out of range")))
        };
        let uid = id(header.uid())?;
        let gid = id(header.gid())?;
        let mode = Mode::from_bits_truncate(header.mode().map_err(io_err("reading header"))? & 0o7777);
        let secs = header.mtime().map_err(io_err("reading header"))?;
        let secs = i64::try_from(secs).map_err(|_| Fail::Invalid(format!("mtime {secs} out of range")))?;
        let mut mtime = TimeSpec::new(secs, 0);
        self.xattrs.clear();
        if let Some(extensions) = entry.pax_extensions().map_err(io_err("reading PAX header"))? {
            for ext in extensions {
                let ext = ext.map_err(io_err("reading PAX header"))?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    // Sub-second precision, which the header's field cannot hold.
                    mtime = pax_time(ext.value_bytes())
                        .ok_or_else(|| Fail::invalid("PAX mtime is not a number"))?;
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    // overlayfs's own xattrs (redirect, metacopy, opaque, ...) would let the
                    // layer steer the overlay beyond what whiteouts may say: dropped.
                    if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
                        continue;
                    }
                    let name = CString::new(name).map_err(|_| Fail::invalid("xattr name holds a NUL"))?;
                    self.xattrs.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta { uid, gid, mode, mtime })
    }

    /// Opens directory `parent` (cleaned, relative to the target) inside the target, making
    /// missing components with mode 0755.
    fn parent_dir(&self, parent: &[u8]) -> Result<OwnedFd, Fail> {
        let root = self.root.as_fd();
        match open_dir_in(root, parent) {
            Err(Errno::ENOENT) => {}
            other => return other.map_err(sys("opening parent directory (openat2)")),
        }
        // Walk down from the top, so each new directory is made in one already resolved in root.
        let mut dir = open_dir_in(root, b"").map_err(sys("opening target (openat2)"))?;
        let mut end = 0;
        for component in parent.split(|&b| b == b'/') {
            end += component.len();
            let prefix = &parent[..end];
            end += 1;
            dir = match open_dir_in(root, prefix) {
                Err(Errno::ENOENT) => {
                    match mkdirat(&dir, component, Mode::from_bits_truncate(0o755)) {
                        // Explicitly, so the result does not depend on this process's umask.
                        Ok(()) => fchmodat(
                            &dir,
                            component,
                            Mode::from_bits_truncate(0o755),
                            FchmodatFlags::NoFollowSymlink,
                        )
                        .map_err(sys("chmod parent directory (fchmodat)"))?,
                        // A symlink whose target is missing: the open below reports it.
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys("creating parent directory (mkdirat)")(e)),
                    }
                    open_dir_in(root, prefix)
                }
                other => other,
            }
            .map_err(sys("opening parent directory (openat2)"))?;
        }
        Ok(dir)
    }

    fn whiteout(&mut self, parent: &[u8], hidden: &[u8]) -> Result<Outcome, Fail> {
        if hidden == b".wh..opq" {
            // `.wh..wh..opq`: the directory hides everything below it in lower layers.
            let dir = self.parent_dir(parent)?;
            set_xattr(dir.as_fd(), b".", c"trusted.overlay.opaque", b"y")
                .map_err(sys("marking directory opaque (lsetxattr trusted.overlay.opaque)"))?;
            return Ok(Outcome::Applied);
        }
        if hidden.starts_with(b".wh.") {
            // Other `.wh..wh.` names are aufs's own bookkeeping (`.wh..wh.plnk`), not files.
            return Ok(Outcome::Skipped);
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Fail::invalid("whiteout of no file"));
        }
        let dir = self.parent_dir(parent)?;
        let dir = dir.as_fd();
        // Replaces whatever an earlier entry of this layer made there.
        replace(dir, hidden, "creating whiteout (mknodat)", || {
            mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        })?;
        Ok(Outcome::Applied)
    }

    fn directory(&mut self, dir: BorrowedFd, name: &[u8], meta: &Meta, path: &[u8]) -> Result<Outcome, Fail> {
        let private = Mode::from_bits_truncate(0o700);
        match mkdirat(dir, name, private) {
            Err(Errno::EEXIST) => {
                let existing =
                    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("stat (fstatat)"))?;
                // An existing directory is kept, with its contents; anything else is replaced.
                if !is_dir(existing.st_mode) {
                    remove(dir, name).map_err(sys("removing the existing entry"))?;
                    mkdirat(dir, name, private).map_err(sys("creating directory (mkdirat)"))?;
                }
            }
            other => other.map_err(sys("creating directory (mkdirat)"))?,
        }
        self.set_metadata(dir, name, meta, Node::Dir)?;
        self.dir_times.push((path.to_vec(), meta.mtime));
        Ok(Outcome::Applied)
    }

    fn file<R: Read>(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        meta: &Meta,
        entry: &mut tar::Entry<R>,
    ) -> Result<Outcome, Fail> {
        // O_EXCL: never open what is there, above all a symlink planted by an earlier entry.
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = replace(dir, name, "creating file (openat)", || {
            openat(dir, name, flags, Mode::from_bits_truncate(0o600))
        })?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("reading contents")(e)),
            };
            file.write_all(&self.buf[..n]).map_err(io_err("writing file"))?;
            written += n as u64;
        }
        // The tar crate ends an entry's data quietly where the stream ends.
        if written != entry.size() {
            let short = io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ends inside the file");
            return Err(io_err("reading contents")(short));
        }
        drop(file);
        self.stats.bytes += written;
        self.set_metadata(dir, name, meta, Node::Other)?;
        Ok(Outcome::Applied)
    }

    /// A hardlink to `link`, a path in the layer: resolved inside the target like any entry,
    /// and its final component not followed, so it can only ever name a file of this target.
    fn hardlink(&mut self, dir: BorrowedFd, name: &[u8], link: &[u8]) -> Result<Outcome, Fail> {
        let mut link_path = Vec::new();
        clean(link, &mut link_path);
        let (link_parent, link_name) =
            split(&link_path).ok_or_else(|| Fail::invalid("hardlink to the layer's root"))?;
        let link_dir = open_dir_in(self.root.as_fd(), link_parent)
            .map_err(sys("opening hardlink target's directory (openat2)"))?;
        replace(dir, name, "creating hardlink (linkat)", || {
            linkat(&link_dir, link_name, dir, name, AtFlags::empty())
        })?;
        // The owner, mode and times are the linked inode's, which its own entry set.
        Ok(Outcome::Applied)
    }

    fn node<R: Read>(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        meta: &Meta,
        entry: &tar::Entry<R>,
        kind: EntryType,
    ) -> Result<Outcome, Fail> {
        let number = |n: io::Result<Option<u32>>| -> Result<u64, Fail> {
            let n = n.map_err(io_err("reading header"))?;
            Ok(n.ok_or_else(|| Fail::invalid("device without major and minor numbers"))?.into())
        };
        let (sflag, dev) = match kind {
            EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let header = entry.header();
                let dev = makedev(number(header.device_major())?, number(header.device_minor())?);
                (if kind == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK }, dev)
            }
        };
        const MKNOD: &str = "creating node (mknodat)";
        let private = Mode::from_bits_truncate(0o600);
        match replace(dir, name, MKNOD, || mknodat(dir, name, sflag, private, dev)) {
            // Unprivileged (a user namespace) may not make devices; the runtime gives the container its /dev.
            Err(Fail::Io { op: MKNOD, source })
                if sflag != SFlag::S_IFIFO && source.raw_os_error() == Some(libc::EPERM) =>
            {
                Ok(Outcome::Skipped)
            }
            Err(fail) => Err(fail),
            Ok(()) => {
                self.set_metadata(dir, name, meta, Node::Other)?;
                Ok(Outcome::Applied)
            }
        }
    }

    /// Gives `name` in `dir` the entry's owner, mode, xattrs and (but for directories) times.
    fn set_metadata(&self, dir: BorrowedFd, name: &[u8], meta: &Meta, node: Node) -> Result<(), Fail> {
        let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
        fchownat(dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("chown (fchownat)"))?;
        // After chown, which clears setuid and setgid.
        if node != Node::Symlink {
            fchmodat(dir, name, meta.mode, FchmodatFlags::NoFollowSymlink)
                .map_err(sys("chmod (fchmodat)"))?;
        }
        // After chown too, which clears security.capability.
        for (key, value) in &self.xattrs {
            set_xattr(dir, name, key, value).map_err(sys("setting xattr (lsetxattr)"))?;
        }
        if node != Node::Dir {
            utimensat(dir, name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
                .map_err(sys("setting times (utimensat)"))?;
        }
        Ok(())
    }

    /// Sets the directories' mtimes, once everything has been written into them.
    fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        // Deepest first; the sort is stable, so of a directory listed twice the later entry wins.
        self.dir_times.sort_by_key(|(path, _)| Reverse(path.iter().filter(|&&b| b == b'/').count()));
        let root = self.root.as_fd();
        for (path, mtime) in &self.dir_times {
            let fail = |op| {
                move |e: Errno| UnpackError::Entry {
                    path: PathBuf::from(OsStr::from_bytes(path)),
                    op,
                    source: e.into(),
                }
            };
            let Some((parent, name)) = split(path) else { continue };
            // A later entry may have replaced the directory (a file of the same name, a
            // whiteout): then its times are no longer this entry's to set.
            let dir = match open_dir_in(root, parent) {
                Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
                other => other.map_err(fail("opening parent directory (openat2)"))?,
            };
            match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_dir(st.st_mode) => {}
                Ok(_) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(fail("stat (fstatat)")(e)),
            }
            utimensat(&dir, name, mtime, mtime, UtimensatFlags::NoFollowSymlink)
                .map_err(fail("setting directory times (utimensat)"))?;
        }
        Ok(())
    }
}

/// `path`, an entry name, cleaned into `out` as a path relative to the layer's root: `/`, `.`
/// and empty components dropped, `..` taking off the previous component and never going
/// above the root (Go's `filepath.Clean("/" + path)`, what Docker and containerd apply).
/// Empty for the root itself.
fn clean(path: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                let start = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(start);
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
}

/// A cleaned path's parent and final component; `None` for the root.
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    match path.iter().rposition(|&b| b == b'/') {
        _ if path.is_empty() => None,
        Some(i) => Some((&path[..i], &path[i + 1..])),
        None => Some((b"", path)),
    }
}

fn is_dir(mode: libc::mode_t) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

/// A PAX time, `SECONDS[.FRACTION]` and possibly negative.
fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(9).fold(0, |n, d| n * 10 + i64::from(d - b'0'));
    // "-1.5" is a second and a half before the epoch: -2 s + 0.5 s.
    Some(match text.starts_with('-') && nanos > 0 {
        true => TimeSpec::new(secs - 1, 1_000_000_000 - nanos),
        false => TimeSpec::new(secs, nanos),
    })
}

/// Runs `create` for `name` in `dir`. If something is already there (an earlier entry of this
/// layer), removes it and creates again: in a tar, the later entry of a name wins.
fn replace<T>(
    dir: BorrowedFd,
    name: &[u8],
    op: &'static str,
    create: impl Fn() -> nix::Result<T>,
) -> Result<T, Fail> {
    match create() {
        Err(Errno::EEXIST) => {
            remove(dir, name).map_err(sys("removing the existing entry"))?;
            create().map_err(sys(op))
        }
        other => other.map_err(sys(op)),
    }
}

/// Removes `name` from `dir`, a directory with everything in it. Never follows a symlink:
/// `unlinkat` removes the link itself and subdirectories are opened `O_NOFOLLOW`.
fn remove(dir: BorrowedFd, name: &[u8]) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {}
        other => return other,
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut children = Dir::from_fd(openat(dir, name, flags, Mode::empty())?)?;
    // Names first: removing while reading a directory may skip entries.
    let mut names = Vec::new();
    for child in children.iter() {
        let child = child?.file_name().to_bytes().to_vec();
        if child != b"." && child != b".." {
            names.push(child);
        }
    }
    for child in &names {
        remove(children.as_fd(), child)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Opens directory `path` (relative, cleaned) below `root` as an `O_PATH` descriptor.
/// `RESOLVE_IN_ROOT` makes the kernel walk it as if `root` were `/`, so a symlink on the way,
/// absolute or made of `..`, cannot lead out; `RESOLVE_NO_MAGICLINKS` refuses `/proc`-style
/// links, which jump anywhere.
fn open_dir_in(root: BorrowedFd, path: &[u8]) -> nix::Result<OwnedFd> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    // SAFETY: open_how is plain integers, for which all-zero is valid (and the kernel's default).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    path.with_nix_path(|path| loop {
        // SAFETY: `how` is a valid open_how of the size passed and `path` a NUL-terminated
        // string; the returned descriptor is new and owned by no one else.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            // The kernel asks for a retry when a rename raced with the walk.
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    })?
}

/// lsetxattr(2) on `name` in `dir`, reached as `/proc/self/fd/DIR/NAME`: the kernel jumps to the
/// directory already resolved inside the target and, this being the `l` variant, does not
/// follow `name` if it is a symlink.
fn set_xattr(dir: BorrowedFd, name: &[u8], key: &CStr, value: &[u8]) -> nix::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    path.with_nix_path(|path| {
        // SAFETY: `path` and `key` are NUL-terminated strings and `value` a live buffer of the
        // length passed, all only read by the kernel.
        let ret =
            unsafe { libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        Errno::result(ret).map(drop)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(path: &str) -> String {
        let mut out = Vec::new();
        clean(path.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn clean_stays_below_root() {
        assert_eq!(cleaned("./usr/bin/"), "usr/bin");
        assert_eq!(cleaned("/abs//x/./y"), "abs/x/y");
        assert_eq!(cleaned("../../escape"), "escape");
        assert_eq!(cleaned("a/b/../../../c"), "c");
        assert_eq!(cleaned("a/.."), "");
        assert_eq!(cleaned("./"), "");
        assert_eq!(cleaned("..."), "...");
    }

    #[test]
    fn split_parent_and_name() {
        assert_eq!(split(b"a/b/c"), Some((&b"a/b"[..], &b"c"[..])));
        assert_eq!(split(b"c"), Some((&b""[..], &b"c"[..])));
        assert_eq!(split(b""), None);
    }

    #[test]
    fn pax_times() {
        let t = |s: &str| pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.-5"), None);
    }
}
