//! A cgroup v2 device filter: the spec's device rules compiled to an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE and attached to the container's cgroup (v2 has no
//! devices.allow file; this is how runc and crun do it too).
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access_type = access << 16 | device type) and checks the rules from last to first: the
//! first that matches decides, as the last matching rule does in v1. Nothing matching: allow,
//! as a new v1 cgroup inherits its parent's allow-all until a rule says "deny all" (which,
//! matching everything, ends the program before that default).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const ALU64_MOV_X: u8 = 0xbf; // dst = src
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JNE_X: u8 = 0x5d; // if dst != src: pc += off
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers: r1 is the context; the prologue loads the fields into r2..r5.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

/// The program for `rules`.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, TYPE, R1, 0, 0),
        insn(ALU32_AND_K, TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, ACCESS, R1, 0, 0),
        insn(ALU32_RSH_K, ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, MINOR, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let block = rule_block(rule);
        let unconditional = !block.iter().any(|i| i.code == JNE_K || i.code == JNE_X);
        prog.extend(block);
        // A rule that matches everything decides everything; the verifier rejects code
        // after it as unreachable.
        if unconditional {
            return prog;
        }
    }
    prog.extend([insn(ALU64_MOV_K, R0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0)]);
    prog
}

/// Checks that jump to the end of the block when the rule does not match, then returns
/// the rule's verdict.
fn rule_block(rule: &LinuxDeviceCgroup) -> Vec<Insn> {
    // Each check: (instructions, index of its jump within them).
    let mut checks: Vec<Vec<Insn>> = Vec::new();
    match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => checks.push(vec![insn(JNE_K, TYPE, 0, 0, DEV_CHAR)]),
        LinuxDeviceType::B => checks.push(vec![insn(JNE_K, TYPE, 0, 0, DEV_BLOCK)]),
        LinuxDeviceType::P | LinuxDeviceType::A => {}
    }
    let access = access_mask(rule.access().as_deref().unwrap_or("rwm"));
    if access != ACC_MKNOD | ACC_READ | ACC_WRITE {
        // Matches only if every requested kind of access is in the rule: (req & rule) == req.
        checks.push(vec![
            insn(ALU64_MOV_X, R1, ACCESS, 0, 0),
            insn(ALU32_AND_K, R1, 0, 0, access),
            insn(JNE_X, R1, ACCESS, 0, 0),
        ]);
    }
    if let Some(major) = rule.major() {
        checks.push(vec![insn(JNE_K, MAJOR, 0, 0, major as i32)]);
    }
    if let Some(minor) = rule.minor() {
        checks.push(vec![insn(JNE_K, MINOR, 0, 0, minor as i32)]);
    }
    let mut block: Vec<Insn> = checks.into_iter().flatten().collect();
    block.extend([insn(ALU64_MOV_K, R0, 0, 0, rule.allow() as i32), insn(EXIT, 0, 0, 0, 0)]);
    // Every conditional jump goes past this block's end.
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if ins.code == JNE_K || ins.code == JNE_X {
            ins.off = (len - i - 1) as i16;
        }
    }
    block
}

fn access_mask(access: &str) -> i32 {
    access.chars().fold(0, |m, c| match c {
        'm' => m | ACC_MKNOD,
        'r' => m | ACC_READ,
        'w' => m | ACC_WRITE,
        _ => m,
    })
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The head of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("loading the device filter (eBPF): {errno}{}", if log.is_empty() { String::new() } else { format!("; verifier: {log}") })]
    Load { errno: Errno, log: String },
    #[error("attaching the device filter (eBPF): {0}")]
    Attach(Errno),
}

/// Loads `prog` and attaches it to the cgroup directory `cgroup` (an fd opened for reading,
/// not O_PATH). The attachment lives as long as the cgroup, so the program's fd is closed.
pub fn attach_device_filter(cgroup: BorrowedFd, prog: &[Insn]) -> Result<(), BpfError> {
    let prog_fd = load(prog, false).or_else(|_| load(prog, true))?;
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: `attach` is a valid bpf_attr head that outlives the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    })
    .map(drop)
    .map_err(BpfError::Attach)
}

/// BPF_PROG_LOAD; with `verbose`, the verifier's log comes back in the error.
fn load(prog: &[Insn], verbose: bool) -> Result<OwnedFd, BpfError> {
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..14].copy_from_slice(b"rocker_devices");
    let mut log = vec![0u8; if verbose { 64 * 1024 } else { 0 }];
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: verbose as u32,
        log_size: log.len() as u32,
        log_buf: if verbose { log.as_mut_ptr() as u64 } else { 0 },
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: `attr` points at `prog`, `license` and `log`, which outlive the call; the kernel
    // reads the first two and writes at most log_size bytes of the last.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    match Errno::result(ret) {
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]).trim().replace('\n', " | ");
            Err(BpfError::Load { errno, log })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).typ(typ).access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    /// The verifier refuses instructions no path reaches.
    fn assert_all_reachable(prog: &[Insn]) {
        let mut seen = vec![false; prog.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if pc >= prog.len() || std::mem::replace(&mut seen[pc], true) {
                continue;
            }
            match prog[pc].code {
                EXIT => {}
                JNE_K | JNE_X => todo.extend([pc + 1, pc + 1 + prog[pc].off as usize]),
                _ => todo.push(pc + 1),
            }
        }
        assert!(seen.iter().all(|&s| s), "unreachable instructions: {seen:?}");
    }

    /// Runs the program the way the kernel would, on one request.
    fn run(prog: &[Insn], typ: i32, access: i32, major: i32, minor: i32) -> i64 {
        let ctx = [((access << 16) | typ) as u32, major as u32, minor as u32];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as i64,
                ALU32_AND_K => r[dst] = ((r[dst] as u32) & (i.imm as u32)) as i64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as i64,
                ALU64_MOV_K => r[dst] = i.imm as i64,
                ALU64_MOV_X => r[dst] = r[src],
                JNE_K if r[dst] != i.imm as i64 => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn deny_all_then_allow_list() {
        let rules = [
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, None, None, "m"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::C, Some(136), None, "rwm"),
        ];
        let prog = compile(&rules);
        assert_all_reachable(&prog);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&prog, DEV_CHAR, ACC_MKNOD, 1, 11), 1, "mknod of any char device");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0), 0, "block devices are not allowed");
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 136, 5), 1, "a pts");
    }

    #[test]
    fn without_a_deny_all_the_default_is_allow() {
        assert_eq!(run(&compile(&[]), DEV_CHAR, ACC_READ, 1, 3), 1);
        let deny_null = [rule(false, LinuxDeviceType::C, Some(1), Some(3), "rwm")];
        assert_eq!(run(&compile(&deny_null), DEV_CHAR, ACC_READ, 1, 3), 0);
        assert_eq!(run(&compile(&deny_null), DEV_CHAR, ACC_READ, 1, 5), 1);
    }

    #[test]
    fn a_later_allow_all_overrides_earlier_rules() {
        let rules = [
            rule(false, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::A, None, None, "rwm"),
        ];
        let prog = compile(&rules);
        assert_all_reachable(&prog);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 1);
    }
}
