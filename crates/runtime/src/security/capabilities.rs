//! The spec's five capability sets. The bounding set is cut before the switch of user (it
//! needs CAP_SETPCAP, which the switch may take away); the other sets are set after it,
//! with PR_SET_KEEPCAPS so that a switch to a non-root user keeps what the spec grants.

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("capability {0} is not known to this runtime")]
    Unknown(String),
    #[error("setting the {set:?} capability set: {source}")]
    Set {
        set: CapSet,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("prctl(PR_SET_KEEPCAPS): {0}")]
    KeepCaps(nix::Error),
}

/// Removes from the bounding set every capability the spec leaves out of it, and keeps the
/// permitted set across the coming setuid.
pub fn drop_bounding(spec_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    if let Some(bounding) = spec_caps.bounding() {
        let keep = to_caps(bounding)?;
        for cap in caps::all().difference(&keep) {
            // The running kernel may not know every capability the crate lists.
            match caps::drop(None, CapSet::Bounding, *cap) {
                Ok(()) => {}
                Err(_) if !caps::has_cap(None, CapSet::Bounding, *cap).unwrap_or(false) => {}
                Err(source) => return Err(CapabilityError::Set { set: CapSet::Bounding, source }),
            }
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(CapabilityError::KeepCaps)
}

/// Sets the inheritable, effective, permitted and ambient sets, in an order the kernel
/// accepts: inheritable while permitted is still full, effective before permitted shrinks
/// below it, ambient last (it needs both permitted and inheritable).
pub fn apply_after_setuid(spec_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let sets = [
        (CapSet::Inheritable, spec_caps.inheritable()),
        (CapSet::Effective, spec_caps.effective()),
        (CapSet::Permitted, spec_caps.permitted()),
        (CapSet::Ambient, spec_caps.ambient()),
    ];
    let mut applied: Vec<CapsHashSet> = Vec::new();
    for (set, wanted) in sets {
        let mut value = match wanted {
            Some(w) => to_caps(w)?,
            None => CapsHashSet::new(),
        };
        if matches!(set, CapSet::Ambient) {
            // The kernel raises an ambient capability only if it is permitted and inheritable;
            // specs (runc's default among them) list others, which runc and crun skip too.
            value.retain(|c| applied[0].contains(c) && applied[2].contains(c));
        }
        let result = if matches!(set, CapSet::Ambient) {
            // caps::set walks every capability with a prctl each; clearing takes one call.
            caps::clear(None, set)
                .and_then(|()| value.iter().try_for_each(|c| caps::raise(None, CapSet::Ambient, *c)))
        } else {
            caps::set(None, set, &value)
        };
        result.map_err(|source| CapabilityError::Set { set, source })?;
        applied.push(value);
    }
    Ok(())
}

fn to_caps(spec: &Capabilities) -> Result<CapsHashSet, CapabilityError> {
    spec.iter()
        .map(|c| {
            let name = format!("CAP_{c}");
            name.parse().map_err(|_| CapabilityError::Unknown(name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn spec_names_map_onto_kernel_capabilities() {
        let spec: Capabilities = [Capability::NetBindService, Capability::Chown].into_iter().collect();
        let caps = to_caps(&spec).unwrap();
        assert!(caps.contains(&caps::Capability::CAP_NET_BIND_SERVICE));
        assert!(caps.contains(&caps::Capability::CAP_CHOWN));
        assert_eq!(caps.len(), 2);
    }
}
