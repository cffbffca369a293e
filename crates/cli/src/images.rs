//! The image commands' output, as Docker prints it. Errors exit 1, as Docker's client does.

use std::io::Read;

use rocker_engine::images::{self, Listed};
use rocker_engine::{Engine, EngineError, Progress};

use crate::args::{
    ImagesArgs, ImportArgs, LoadArgs, LoginArgs, LogoutArgs, PullArgs, RmiArgs, SaveArgs, TagArgs,
};

fn fail(e: EngineError) -> u8 {
    eprintln!("rocker: {}", rocker_engine::error_chain(&e));
    1
}

fn finish(result: Result<(), EngineError>) -> u8 {
    result.map_or_else(fail, |()| 0)
}

pub fn pull(engine: &Engine, a: PullArgs) -> u8 {
    finish(images::pull(engine, &a.image, a.platform, Progress::for_stderr(a.quiet)).and_then(
        |(image, newer)| {
            let reference = rocker_engine::parse_reference(&a.image)?;
            if !a.quiet {
                println!("Digest: {}", images::repo_digest(&image));
                let status = if newer { "Downloaded newer image" } else { "Image is up to date" };
                println!("Status: {status} for {reference}");
            }
            println!("{reference}");
            Ok(())
        },
    ))
}

pub fn list(engine: &Engine, a: ImagesArgs) -> u8 {
    let rows = match images::list(engine) {
        Ok(rows) => rows,
        Err(e) => return fail(e),
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in rows.iter().filter(|r| seen.insert(r.id.clone())) {
            println!("{}", r.id);
        }
        return 0;
    }
    match a.format.as_str() {
        "json" => {
            for r in &rows {
                let line = serde_json::json!({
                    "Repository": r.repository, "Tag": r.tag, "ID": r.id, "Digest": r.digest,
                    "CreatedAt": r.created, "CreatedSince": since(&r.created),
                    "Size": human_size(r.size), "VirtualSize": human_size(r.size),
                });
                println!("{line}");
            }
            0
        }
        "table" => {
            table(&rows, a.digests);
            0
        }
        other => {
            eprintln!("rocker: --format {other:?} is not supported: use table or json");
            125
        }
    }
}

fn table(rows: &[Listed], digests: bool) {
    let mut lines: Vec<Vec<String>> = vec![];
    let header = if digests {
        vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    lines.push(header.into_iter().map(String::from).collect());
    for r in rows {
        let mut l = vec![r.repository.clone(), r.tag.clone()];
        if digests {
            l.push(if r.digest.is_empty() { "<none>".into() } else { r.digest.clone() });
        }
        l.extend([r.id.clone(), since(&r.created), human_size(r.size)]);
        lines.push(l);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0)).collect();
    for l in lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", cells.join("   ").trim_end());
    }
}

/// Docker's sizes: decimal units, three significant digits (`4.26MB`).
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[i])
}

/// `2 weeks ago` from an RFC 3339 time; the time itself if it cannot be read.
fn since(created: &str) -> String {
    let Some(then) = unix_seconds(created) else {
        return if created.is_empty() { "N/A".into() } else { created.into() };
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let s = (now - then).max(0);
    let (n, unit) = match s {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        86400..1209600 => (s / 86400, "day"),
        1209600..5259600 => (s / 604800, "week"),
        5259600..63115200 => (s / 2629800, "month"),
        _ => (s / 31557600, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn unix_seconds(t: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = t.get(19..)?.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600 + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + s - offset)
}

pub fn remove(engine: &Engine, a: RmiArgs) -> u8 {
    let mut code = 0;
    for name in &a.images {
        match images::remove(engine, name, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => code = fail(e),
        }
    }
    code
}

pub fn tag(engine: &Engine, a: TagArgs) -> u8 {
    finish(images::tag(engine, &a.source, &a.target))
}

pub fn inspect(engine: &Engine, names: &[String]) -> u8 {
    let mut found = vec![];
    let mut code = 0;
    for n in names {
        match images::inspect(engine, n) {
            Ok(v) => found.push(v),
            Err(e) => code = fail(e),
        }
    }
    println!("{}", serde_json::to_string_pretty(&found).expect("JSON values serialize"));
    code
}

pub fn prune(engine: &Engine) -> u8 {
    match images::prune(engine) {
        Ok(ids) => {
            if !ids.is_empty() {
                println!("Deleted Images:");
                ids.iter().for_each(|id| println!("deleted: {id}"));
            }
            println!("Total reclaimed: {} images", ids.len());
            0
        }
        Err(e) => fail(e),
    }
}

pub fn import(engine: &Engine, a: ImportArgs) -> u8 {
    let cmd = a.cmd.map(|c| c.split_whitespace().map(String::from).collect());
    finish(
        images::import(engine, &a.source, a.reference.as_deref(), cmd).map(|image| println!("{}", image.id)),
    )
}

pub fn load(engine: &Engine, a: LoadArgs) -> u8 {
    let loaded = match images::load(engine, a.input.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    for l in loaded {
        if let Some(name) = &l.unused_ref_name {
            eprintln!("rocker: warning: {name:?} names no repository: the image is loaded untagged");
        }
        if l.tags.is_empty() {
            println!("Loaded image ID: {}", l.image.id);
        }
        for t in &l.tags {
            println!("Loaded image: {t}");
        }
    }
    0
}

pub fn save(engine: &Engine, a: SaveArgs) -> u8 {
    finish(images::save(engine, &a.images, &a.format, a.output.as_deref()))
}

pub fn login(engine: &Engine, a: LoginArgs) -> u8 {
    let registry = images::registry_name(a.server.as_deref());
    let Some(user) = a.username else {
        eprintln!("rocker: login needs --username (and --password or --password-stdin)");
        return 125;
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            eprintln!("rocker: --password and --password-stdin are mutually exclusive");
            return 125;
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut p) {
                eprintln!("rocker: reading the password from stdin: {e}");
                return 125;
            }
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            eprintln!("rocker: login needs --password or --password-stdin");
            return 125;
        }
    };
    match images::login(engine, &registry, &user, &password) {
        Ok(()) => {
            println!("Login Succeeded");
            0
        }
        Err(e) => fail(e),
    }
}

pub fn logout(engine: &Engine, a: LogoutArgs) -> u8 {
    let registry = images::registry_name(a.server.as_deref());
    match images::logout(engine, &registry) {
        Ok(true) => {
            println!("Removing login credentials for {registry}");
            0
        }
        Ok(false) => {
            println!("Not logged in to {registry}");
            0
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(1_000), "1kB");
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2024-02-29T12:00:00.123456789Z"), Some(1_709_208_000));
        assert_eq!(unix_seconds("2024-02-29T14:00:00+02:00"), Some(1_709_208_000));
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
