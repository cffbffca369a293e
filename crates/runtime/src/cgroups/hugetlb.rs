//! Huge page limits.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use super::fs::{self, CgroupError};
use super::Version;

pub fn apply(dir: &Path, limits: &[LinuxHugepageLimit], version: Version) -> Result<(), CgroupError> {
    for l in limits {
        let file = match version {
            Version::V1 => format!("hugetlb.{}.limit_in_bytes", l.page_size()),
            Version::V2 => format!("hugetlb.{}.max", l.page_size()),
        };
        fs::write(dir, &file, l.limit().to_string())?;
    }
    Ok(())
}
