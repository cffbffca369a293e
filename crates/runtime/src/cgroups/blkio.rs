//! Block I/O: weight and throttling (v1 blkio, v2 io).

use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use super::fs::{self, CgroupError};
use super::Version;

pub fn apply(dir: &Path, b: &LinuxBlockIo, version: Version) -> Result<(), CgroupError> {
    // Docker sends a weight of 0 for "not set", as runc reads it.
    if let Some(weight) = b.weight().filter(|&w| w > 0) {
        // Kernels with the BFQ scheduler name the file after it.
        let (plain, bfq, value) = match version {
            Version::V1 => ("blkio.weight", "blkio.bfq.weight", weight.to_string()),
            Version::V2 => ("io.weight", "io.bfq.weight", weight.to_string()),
        };
        let file = if dir.join(plain).exists() { plain } else { bfq };
        fs::write(dir, file, value)?;
    }
    let throttles = [
        (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device", "rbps"),
        (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device", "wbps"),
        (b.throttle_read_iops_device(), "blkio.throttle.read_iops_device", "riops"),
        (b.throttle_write_iops_device(), "blkio.throttle.write_iops_device", "wiops"),
    ];
    for (devices, v1_file, v2_key) in throttles {
        for d in devices.iter().flatten() {
            let (dev, rate) = (format!("{}:{}", d.major(), d.minor()), d.rate());
            match version {
                Version::V1 => fs::write(dir, v1_file, format!("{dev} {rate}"))?,
                Version::V2 => fs::write(dir, "io.max", format!("{dev} {v2_key}={rate}"))?,
            }
        }
    }
    Ok(())
}
