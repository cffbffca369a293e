//! Layer unpacking on the real filesystem (run as root): every entry type and its metadata,
//! whiteouts in overlayfs's format, and hostile layers that try to reach outside the target.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rocker_image::unpack::{unpack, Stats, UnpackError};
use rocker_test_support::TempDir;
use tar::{EntryType, Header};

/// A layer built entry by entry, with names and link names written as raw bytes so that
/// hostile ones (`..`, absolute) get through unchanged.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, name: &str, size: usize) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size as u64);
        h.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(1_500_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let field = &mut h.as_gnu_mut().unwrap().name;
        assert!(name.len() <= field.len(), "use long() for {name}");
        field[..name.len()].copy_from_slice(name.as_bytes());
        h
    }

    /// Appends `h` (checksummed here) with `data`.
    fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Layer {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn with(
        &mut self,
        kind: EntryType,
        name: &str,
        data: &[u8],
        edit: impl FnOnce(&mut Header),
    ) -> &mut Layer {
        let mut h = Layer::header(kind, name, data.len());
        edit(&mut h);
        self.raw(h, data)
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Layer {
        self.with(EntryType::Regular, name, data.as_bytes(), |_| {})
    }

    fn dir(&mut self, name: &str) -> &mut Layer {
        self.with(EntryType::Directory, name, b"", |_| {})
    }

    fn symlink(&mut self, name: &str, to: &str) -> &mut Layer {
        self.with(EntryType::Symlink, name, b"", |h| h.set_link_name_literal(to).unwrap())
    }

    fn hardlink(&mut self, name: &str, to: &str) -> &mut Layer {
        self.with(EntryType::Link, name, b"", |h| h.set_link_name_literal(to).unwrap())
    }

    /// A PAX extended header for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Layer {
        let mut data = Vec::new();
        for (key, value) in records {
            // "LEN key=value\n", where LEN counts itself.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_path("PaxHeaders/next").unwrap();
        h.set_size(data.len() as u64);
        self.raw(h, &data)
    }

    /// A file whose name is too long for the header: the tar crate writes a GNU long name.
    fn long(&mut self, name: &str, data: &str) -> &mut Layer {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_500_000_000);
        self.0.append_data(&mut h, name, data.as_bytes()).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new())).into_inner().unwrap()
    }
}

/// A test's directories: `target` to unpack into and, beside it, `outside`, a sentinel tree
/// that no layer may touch. `unique` names things an escape could make in / or /tmp.
struct Env {
    tmp: TempDir,
    target: PathBuf,
    outside: PathBuf,
    unique: String,
}

impl Env {
    fn new() -> Env {
        let tmp = TempDir::new("unpack");
        let target = tmp.path().join("target");
        let outside = tmp.path().join("outside");
        fs::create_dir(&target).unwrap();
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("victim"), "original").unwrap();
        std::os::unix::fs::symlink("victim", outside.join("victim-link")).unwrap();
        let unique = tmp.path().file_name().unwrap().to_str().unwrap().to_string();
        Env { tmp, target, outside, unique }
    }

    fn at(&self, path: &str) -> PathBuf {
        self.target.join(path)
    }

    fn outside_str(&self) -> &str {
        self.outside.to_str().unwrap()
    }

    fn victim(&self) -> String {
        format!("{}/victim", self.outside_str())
    }

    fn unpack(&self, layer: &[u8]) -> Result<Stats, UnpackError> {
        unpack(layer, &self.target)
    }

    /// Everything an escape could have changed: the sentinel tree and the temp dir beside the
    /// target (every attribute, ctime included, which any chown, chmod, link or xattr bumps),
    /// and anything in / or /tmp named after this test.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut snap = BTreeMap::new();
        walk(&self.outside, &mut snap);
        for dir in [self.tmp.path(), Path::new("/"), Path::new("/tmp")] {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy();
                // Exactly: other tests' dirs share the prefix (`...-1` and `...-12`).
                let ours = name == self.unique || name.starts_with(&format!("{}-", self.unique));
                if dir == self.tmp.path() || (ours && path != self.tmp.path()) {
                    snap.insert(path.clone(), "present".into());
                }
            }
        }
        snap.insert(self.outside.clone(), describe(&self.outside));
        snap
    }

    /// Unpacks a hostile `layer` and asserts that nothing outside the target changed.
    fn hostile(&self, layer: &[u8]) -> Result<Stats, UnpackError> {
        let before = self.snapshot();
        let result = self.unpack(layer);
        assert_eq!(before, self.snapshot(), "layer changed something outside the target ({result:?})");
        assert_eq!(fs::read_to_string(self.outside.join("victim")).unwrap(), "original");
        assert_eq!(fs::metadata(self.outside.join("victim")).unwrap().nlink(), 1);
        result
    }
}

fn walk(dir: &Path, snap: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        snap.insert(path.clone(), describe(&path));
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, snap);
        }
    }
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut snap = BTreeMap::new();
    walk(dir, &mut snap);
    snap.keys().map(|p| p.display().to_string()).collect()
}

fn describe(path: &Path) -> String {
    let m = fs::symlink_metadata(path).unwrap();
    let content = if m.is_file() {
        fs::read_to_string(path).unwrap()
    } else if m.file_type().is_symlink() {
        fs::read_link(path).unwrap().display().to_string()
    } else {
        String::new()
    };
    format!(
        "ino={} mode={:o} owner={}:{} nlink={} size={} mtime={}.{} ctime={}.{} xattrs={:?} {content}",
        m.ino(),
        m.mode(),
        m.uid(),
        m.gid(),
        m.nlink(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        xattr_names(path)
    )
}

fn xattr_names(path: &Path) -> Vec<u8> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: `c` is NUL-terminated and `buf` a live buffer of the length passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    buf.truncate(n as usize);
    buf
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: `c` and `name` are NUL-terminated and `buf` a live buffer of the length passed.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn is_whiteout(path: &Path) -> bool {
    let m = fs::symlink_metadata(path).unwrap();
    m.file_type().is_char_device() && m.rdev() == 0
}

#[test]
fn unpacks_every_entry_type_with_metadata() {
    let env = Env::new();
    let long_dir = "d".repeat(60);
    let long_name = format!("{long_dir}/{}", "f".repeat(80));
    let pax_name = format!("{long_dir}/{}", "p".repeat(90));
    let layer = Layer::new()
        .dir("./")
        .dir("usr/")
        .dir("usr/bin/")
        .file("usr/bin/tool", "#!/bin/sh\necho hi\n")
        .with(EntryType::Regular, "usr/bin/suid", b"x", |h| {
            h.set_mode(0o4755);
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mtime(1_234_567_890);
        })
        .with(EntryType::Directory, "owned/", b"", |h| {
            h.set_mode(0o1777);
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mtime(1_111_111_111);
        })
        // Written after its directory's entry, which must keep its mtime all the same.
        .file("owned/late", "late")
        .file("deep/implicit/parents/file", "made its parents")
        .symlink("usr/bin/sh", "/bin/busybox")
        .with(EntryType::Symlink, "owned/link", b"", |h| {
            h.set_link_name_literal("../usr").unwrap();
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mtime(1_222_222_222);
        })
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .hardlink("usr/bin/tool3", "/usr/bin/tool")
        .with(EntryType::Fifo, "fifo", b"", |h| h.set_mode(0o620))
        .with(EntryType::Char, "null", b"", |h| {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            h.set_mode(0o666);
        })
        .pax(&[
            ("SCHILY.xattr.user.foo", b"bar"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ("mtime", b"1600000000.25"),
        ])
        .file("xattrs", "x")
        .pax(&[("path", pax_name.as_bytes()), ("uid", b"3000000")])
        .file("short-name-in-header", "pax")
        .long(&long_name, "long")
        .finish();

    let stats = env.unpack(&layer).unwrap();
    assert_eq!(stats.entries, 16, "every entry but ./ counted");
    let contents = ["#!/bin/sh\necho hi\n", "x", "late", "made its parents", "x", "pax", "long"];
    assert_eq!(stats.bytes, contents.iter().map(|c| c.len() as u64).sum::<u64>());

    assert_eq!(fs::read_to_string(env.at("usr/bin/tool")).unwrap(), "#!/bin/sh\necho hi\n");
    assert_eq!(fs::read_to_string(env.at("deep/implicit/parents/file")).unwrap(), "made its parents");
    assert_eq!(fs::metadata(env.at("deep/implicit")).unwrap().mode() & 0o7777, 0o755);

    let suid = fs::metadata(env.at("usr/bin/suid")).unwrap();
    assert_eq!((suid.uid(), suid.gid()), (1234, 5678));
    assert_eq!(suid.mode() & 0o7777, 0o4755, "setuid survives the chown");
    assert_eq!(suid.mtime(), 1_234_567_890);

    let owned = fs::metadata(env.at("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.mode() & 0o7777), (1234, 5678, 0o1777));
    assert_eq!(owned.mtime(), 1_111_111_111, "directory mtime set after its contents");
    assert_eq!(fs::metadata(env.at("usr")).unwrap().mtime(), 1_500_000_000);

    assert_eq!(fs::read_link(env.at("usr/bin/sh")).unwrap(), Path::new("/bin/busybox"));
    let link = fs::symlink_metadata(env.at("owned/link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!((link.uid(), link.gid(), link.mtime()), (1234, 5678, 1_222_222_222));
    assert_eq!(fs::metadata(env.at("usr")).unwrap().uid(), 0, "symlink's owner not applied through it");

    let tool = fs::metadata(env.at("usr/bin/tool")).unwrap();
    assert_eq!(tool.nlink(), 3);
    assert_eq!(fs::metadata(env.at("usr/bin/tool2")).unwrap().ino(), tool.ino());
    assert_eq!(fs::metadata(env.at("usr/bin/tool3")).unwrap().ino(), tool.ino());

    let fifo = fs::symlink_metadata(env.at("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    let null = fs::symlink_metadata(env.at("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), fs::metadata("/dev/null").unwrap().rdev());
    assert_eq!(null.mode() & 0o7777, 0o666);

    assert_eq!(xattr(&env.at("xattrs"), "user.foo").as_deref(), Some(&b"bar"[..]));
    assert_eq!(xattr_names(&env.at("xattrs")), b"user.foo\0", "overlayfs's own xattrs dropped");
    let x = fs::metadata(env.at("xattrs")).unwrap();
    assert_eq!((x.mtime(), x.mtime_nsec()), (1_600_000_000, 250_000_000));

    assert_eq!(fs::read_to_string(env.at(&pax_name)).unwrap(), "pax");
    assert_eq!(fs::metadata(env.at(&pax_name)).unwrap().uid(), 3_000_000, "PAX uid beyond the octal field");
    assert!(!env.at("short-name-in-header").exists());
    assert_eq!(fs::read_to_string(env.at(&long_name)).unwrap(), "long");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let env = Env::new();
    let layer = Layer::new()
        .file("a", "first")
        .file("a", "second")
        .file("dir-then-file/inner", "x")
        .file("dir-then-file", "now a file")
        .file("file-then-dir", "x")
        .dir("file-then-dir/")
        .file("kept/one", "1")
        .with(EntryType::Directory, "kept/", b"", |h| h.set_mode(0o700))
        .symlink("link-then-file", "a")
        .file("link-then-file", "own file")
        .finish();
    env.unpack(&layer).unwrap();
    assert_eq!(fs::read_to_string(env.at("a")).unwrap(), "second");
    assert_eq!(fs::read_to_string(env.at("dir-then-file")).unwrap(), "now a file");
    assert!(fs::symlink_metadata(env.at("file-then-dir")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(env.at("kept/one")).unwrap(), "1", "existing directory keeps its contents");
    assert_eq!(fs::metadata(env.at("kept")).unwrap().mode() & 0o7777, 0o700);
    assert!(fs::symlink_metadata(env.at("link-then-file")).unwrap().is_file());
    assert_eq!(fs::read_to_string(env.at("a")).unwrap(), "second", "not written through the old symlink");
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    let env = Env::new();
    let layer = Layer::new()
        .dir("etc/")
        .file("etc/.wh.gone", "")
        .file(".wh.top", "")
        .dir("opaque/")
        .file("opaque/.wh..wh..opq", "")
        .file("implicit/.wh..wh..opq", "")
        .file(".wh..wh.plnk", "")
        .file(".wh..wh..opq.not-opaque/x", "")
        // Removes what an earlier entry of the same layer made.
        .file("etc/replaced", "x")
        .file("etc/.wh.replaced", "")
        .file("tree/a/b", "x")
        .file(".wh.tree", "")
        .finish();
    let stats = env.unpack(&layer).unwrap();
    assert_eq!(stats.entries, 12 - 1, ".wh..wh.plnk not counted");
    assert!(is_whiteout(&env.at("etc/gone")));
    assert!(is_whiteout(&env.at("top")));
    assert!(is_whiteout(&env.at("etc/replaced")));
    assert!(is_whiteout(&env.at("tree")));
    assert_eq!(xattr(&env.at("opaque"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr(&env.at("implicit"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr(&env.at("etc"), "trusted.overlay.opaque"), None);
    let names: Vec<_> = walk_names(&env.target);
    assert!(
        !names.iter().any(|n| n.contains(".wh.gone") || n.contains("plnk") || n.ends_with(".wh..wh..opq")),
        "{names:?}"
    );
}

#[test]
fn names_with_dotdot_or_absolute_stay_inside() {
    let env = Env::new();
    let escape = format!("../../{}-escape", env.unique);
    let sibling = "../outside/pwned".to_string();
    let absolute = format!("{}/pwned-abs", env.outside_str());
    let root_abs = format!("/{}-abs/escape", env.unique);
    let layer = Layer::new()
        .file(&escape, "1")
        .file(&sibling, "2")
        .file(&absolute, "3")
        .file(&root_abs, "4")
        .dir("../../../")
        .file("a/b/../../../../c", "5")
        .finish();
    let stats = env.hostile(&layer).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(fs::read_to_string(env.at(&format!("{}-escape", env.unique))).unwrap(), "1");
    assert_eq!(fs::read_to_string(env.at("outside/pwned")).unwrap(), "2");
    assert_eq!(fs::read_to_string(env.target.join(absolute.trim_start_matches('/'))).unwrap(), "3");
    assert_eq!(fs::read_to_string(env.at(&format!("{}-abs/escape", env.unique))).unwrap(), "4");
    assert_eq!(fs::read_to_string(env.at("c")).unwrap(), "5");
}

/// A hostile layer, built for its own `Env` (whose `outside` it aims at).
type Case = (&'static str, fn(&Env) -> Vec<u8>);

#[test]
fn writes_through_symlinks_stay_inside() {
    // Each layer plants a symlink and then writes through it.
    let cases: [Case; 17] = [
        ("absolute to /", |e| {
            Layer::new().symlink("evil", "/").file(&format!("evil/{}", e.unique), "x").finish()
        }),
        ("absolute to outside", |e| {
            Layer::new().symlink("evil", e.outside_str()).file("evil/pwned", "x").finish()
        }),
        ("dir entry through it", |e| {
            Layer::new().symlink("evil", e.outside_str()).dir("evil/newdir/").finish()
        }),
        ("to ..", |_| Layer::new().symlink("up", "..").file("up/outside/pwned", "x").finish()),
        ("chain of ..", |_| {
            Layer::new()
                .symlink("l1", "..")
                .dir("sub/")
                .symlink("sub/l2", "../l1")
                .file("sub/l2/outside/pwned", "x")
                .finish()
        }),
        ("relative escape", |_| Layer::new().symlink("rel", "../outside").file("rel/pwned", "x").finish()),
        ("file replacing symlink to outside file", |e| {
            Layer::new().symlink("f", &e.victim()).file("f", "overwritten").finish()
        }),
        ("metadata on a symlink to outside", |e| {
            Layer::new()
                .with(EntryType::Symlink, "meta", b"", |h| {
                    h.set_link_name_literal(e.victim()).unwrap();
                    h.set_uid(1234);
                    h.set_mode(0o4777);
                    h.set_mtime(1);
                })
                .finish()
        }),
        ("directory replacing symlink to outside", |e| {
            Layer::new().symlink("d", e.outside_str()).dir("d/").file("d/pwned", "x").finish()
        }),
        ("whiteout through symlink", |e| {
            Layer::new().symlink("w", e.outside_str()).file("w/.wh.victim", "").finish()
        }),
        ("whiteout of a symlink", |e| Layer::new().symlink("w", e.outside_str()).file(".wh.w", "").finish()),
        ("opaque through symlink", |e| {
            Layer::new().symlink("o", e.outside_str()).file("o/.wh..wh..opq", "").finish()
        }),
        ("opaque through symlink to ..", |_| {
            Layer::new().symlink("o", "..").file("o/.wh..wh..opq", "").finish()
        }),
        ("node through symlink", |e| {
            Layer::new().symlink("n", e.outside_str()).with(EntryType::Fifo, "n/fifo", b"", |_| {}).finish()
        }),
        ("directory times through a later symlink", |e| {
            Layer::new()
                .with(EntryType::Directory, "d/", b"", |h| h.set_mtime(1))
                .symlink("d", e.outside_str())
                .finish()
        }),
        ("file metadata through a later symlink", |e| {
            Layer::new()
                .with(EntryType::Regular, "f", b"", |h| {
                    h.set_uid(1234);
                    h.set_mode(0o4777);
                })
                .symlink("f", &e.victim())
                .finish()
        }),
        ("xattr through symlink to ..", |_| {
            Layer::new().symlink("x", "..").pax(&[("SCHILY.xattr.user.evil", b"1")]).dir("x/").finish()
        }),
    ];
    for (name, build) in cases {
        let env = Env::new();
        let result = env.hostile(&build(&env));
        eprintln!("{name}: {result:?}");
        match name {
            "absolute to /" => assert!(env.at(&env.unique).is_file(), "{result:?}"),
            "to .." | "chain of .." => assert!(env.at("outside/pwned").is_file(), "{result:?}"),
            "file replacing symlink to outside file" => {
                assert_eq!(fs::read_to_string(env.at("f")).unwrap(), "overwritten", "{result:?}")
            }
            "whiteout of a symlink" => assert!(is_whiteout(&env.at("w")), "{result:?}"),
            "xattr through symlink to .." => {
                assert_eq!(xattr(&env.at("x"), "user.evil").as_deref(), Some(&b"1"[..]))
            }
            "directory times through a later symlink" => {
                assert!(fs::symlink_metadata(env.at("d")).unwrap().file_type().is_symlink())
            }
            "opaque through symlink to .." => {
                assert_eq!(xattr(&env.target, "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]))
            }
            _ => {}
        }
    }
}

#[test]
fn hardlinks_cannot_reach_outside() {
    // (name, the layer's symlink `s` if any, the hardlink `h`'s target)
    type Symlink = fn(&Env) -> Option<String>;
    type LinkTo = fn(&Env) -> String;
    let cases: [(&str, Symlink, LinkTo); 6] = [
        ("absolute", |_| None, |e| e.victim()),
        ("dotdot", |_| None, |_| "../outside/victim".into()),
        ("deep dotdot", |_| None, |e| format!("../../../../../..{}", e.victim())),
        ("through symlinked parent", |e| Some(e.outside_str().into()), |_| "s/victim".into()),
        ("through symlink to ..", |_| Some("..".into()), |_| "s/outside/victim".into()),
        ("to a symlink to outside", |e| Some(e.victim()), |_| "s".into()),
    ];
    for (name, symlink, link_to) in cases {
        let env = Env::new();
        let mut layer = Layer::new();
        if let Some(to) = symlink(&env) {
            layer.symlink("s", &to);
        }
        let result = env.hostile(&layer.hardlink("h", &link_to(&env)).finish());
        eprintln!("{name}: {result:?}");
        let victim_ino = fs::metadata(env.victim()).unwrap().ino();
        if let Ok(m) = fs::symlink_metadata(env.at("h")) {
            assert_ne!(m.ino(), victim_ino, "{name}: linked the outside file");
            // A hardlink to a symlink links the symlink itself, never what it points to.
            assert!(m.file_type().is_symlink(), "{name}: made something other than the symlink");
        }
    }
}

#[test]
fn hardlink_targets_resolve_inside_the_target() {
    let env = Env::new();
    let layer = Layer::new()
        .file("etc/shadow", "inside")
        .hardlink("abs", "/etc/shadow")
        .hardlink("dotdot", "../../etc/shadow")
        .symlink("s", "/etc")
        .hardlink("via-symlink", "s/shadow")
        .finish();
    env.hostile(&layer).unwrap();
    let ino = fs::metadata(env.at("etc/shadow")).unwrap().ino();
    for name in ["abs", "dotdot", "via-symlink"] {
        assert_eq!(fs::metadata(env.at(name)).unwrap().ino(), ino, "{name}");
    }

    let env = Env::new();
    let err = env.hostile(&Layer::new().hardlink("x", "/etc/shadow").finish()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("layer entry \"x\": "), "{msg}");
    assert!(msg.contains("hardlink"), "{msg}");
}

#[test]
fn invalid_entries_are_errors() {
    for (what, layer) in [
        ("file named like the root", Layer::new().file("..", "x").finish()),
        ("whiteout of ..", Layer::new().file("a/.wh...", "").finish()),
        ("hardlink to the root", Layer::new().hardlink("x", "/").finish()),
        ("hardlink to a missing file", Layer::new().hardlink("x", "missing").finish()),
        ("hardlink to a directory", Layer::new().dir("d/").hardlink("x", "d").finish()),
        ("file under a file", Layer::new().file("f", "").file("f/x", "").finish()),
    ] {
        let env = Env::new();
        let err = env.hostile(&layer).unwrap_err();
        eprintln!("{what}: {err}");
        assert!(err.to_string().starts_with("layer entry "), "{what}: {err}");
    }
}

#[test]
fn corrupt_or_truncated_layers_are_errors() {
    let layer = Layer::new().file("a", &"x".repeat(5000)).file("b", "y").finish();

    for cut in [700, 512 + 5000, 512 + 5120 + 100] {
        let env = Env::new();
        let err = env.hostile(&layer[..cut]).unwrap_err();
        eprintln!("truncated at {cut}: {err}");
    }
    let env = Env::new();
    let err = env.unpack(&layer[..700]).unwrap_err();
    assert!(matches!(err, UnpackError::Entry { op, .. } if op == "reading contents"), "{err}");

    let mut corrupt = layer.clone();
    corrupt[512 + 5120 + 10] ^= 0x55; // a byte of b's header name: the checksum no longer matches
    let env = Env::new();
    let err = env.hostile(&corrupt).unwrap_err();
    assert!(matches!(err, UnpackError::Archive { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(env.at("a")).unwrap().len(),
        5000,
        "entries before the damage were applied"
    );
}

#[test]
fn reads_the_stream_to_its_end() {
    let env = Env::new();
    let mut layer = Layer::new().file("a", "x").finish();
    layer.extend_from_slice(&[0; 8192]); // record padding after the end-of-archive marker
    let mut reader = &layer[..];
    unpack(&mut reader, &env.target).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes left unread", rest.len());
}

#[test]
fn missing_target_is_an_error() {
    let env = Env::new();
    let err = unpack(&Layer::new().finish()[..], &env.at("missing")).unwrap_err();
    assert!(matches!(err, UnpackError::Target { .. }), "{err}");
}
