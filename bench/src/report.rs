//! What a scenario found: a table for the terminal, a JSON file under `bench/results/`, and
//! the section of `bench/RESULTS.md` made from it, with the machine it ran on.

use serde_json::{Value, json};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Report {
    /// File stem under `bench/results/` and the section's key.
    pub name: String,
    pub title: String,
    /// What was run, in a sentence or two.
    pub setup: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Notes under the table (caveats, what a figure means).
    pub notes: Vec<String>,
    /// Everything measured, for the JSON file.
    pub data: Value,
}

impl Report {
    /// The table as aligned text.
    pub fn table(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let _ = write!(s, "{c:<w$}  ");
            }
            s.trim_end().to_string()
        };
        let mut out = format!("{}\n{}\n", self.title, line(&self.columns));
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// The section of RESULTS.md.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n{}\n\n", self.title, self.setup);
        let _ = writeln!(out, "| {} |", self.columns.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.columns.len()));
        for r in &self.rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        for n in &self.notes {
            let _ = write!(out, "\n{n}\n");
        }
        out
    }

    /// Writes `{dir}/{name}.json` (with the machine's description and the time).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.name));
        let body = json!({
            "scenario": self.name,
            "title": self.title,
            "setup": self.setup,
            "machine": machine(),
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "data": self.data,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&body).unwrap_or_default())?;
        Ok(path)
    }

    /// Reads back a report written by [`Report::write`].
    pub fn read(path: &Path) -> Option<(Self, Value)> {
        let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let rows = v["rows"]
            .as_array()?
            .iter()
            .map(|r| {
                r.as_array()
                    .map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            })
            .collect();
        Some((
            Self {
                name: v["scenario"].as_str()?.to_string(),
                title: v["title"].as_str()?.to_string(),
                setup: v["setup"].as_str().unwrap_or("").to_string(),
                columns: strings("columns"),
                rows,
                notes: strings("notes"),
                data: v["data"].clone(),
            },
            v["machine"].clone(),
        ))
    }
}

/// The machine: CPU model and count, memory, kernel, from /proc.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({ "cpu": model, "cpus": cpus, "memory_gib": mem_gib, "kernel": kernel })
}

/// `bench/RESULTS.md` from every report in `dir` (in `order`, then any others by name).
pub fn results_markdown(dir: &Path, order: &[&str]) -> String {
    let mut reports: Vec<(Report, Value)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| Report::read(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    reports.sort_by_key(|(r, _)| {
        (
            order.iter().position(|o| *o == r.name).unwrap_or(usize::MAX),
            r.name.clone(),
        )
    });
    let mut out = String::from(
        "# Benchmark results\n\nMade by `make bench` (`popcast bench all --short`, then `popcast bench results`) from the JSON files in `bench/results/`; every figure comes from code in this repository, run on the machine below. Do not edit by hand.\n\n",
    );
    if let Some((_, m)) = reports.first() {
        let _ = writeln!(
            out,
            "Machine: {} × {}, {} GiB memory, Linux {}.\n",
            m["cpus"],
            m["cpu"].as_str().unwrap_or("?"),
            m["memory_gib"],
            m["kernel"].as_str().unwrap_or("?")
        );
    }
    if reports.is_empty() {
        out.push_str("No scenario has run yet.\n");
    }
    for (r, _) in &reports {
        out.push_str(&r.markdown());
        out.push('\n');
    }
    let mut others: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json") && Report::read(p).is_none())
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    if !others.is_empty() {
        out.push_str(
            "## Other figures
The `cargo bench` targets (`make bench` runs them too) write their own JSON: ",
        );
        out.push_str(
            &others
                .iter()
                .map(|o| format!("`bench/results/{o}`"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push_str(". Their doc comments in `bench/benches/` say what each measures.\n");
    }
    out
}

/// Quantile `q` (0..=1) of sorted `v`; NaN when empty.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// Milliseconds with one decimal, or "–".
pub fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_and_renders() {
        let r = Report {
            name: "demo".into(),
            title: "Demo".into(),
            setup: "Nothing ran.".into(),
            columns: vec!["what".into(), "ms".into()],
            rows: vec![vec!["p50".into(), "12.5".into()]],
            notes: vec!["a note".into()],
            data: json!({ "p50": 12.5 }),
        };
        assert!(r.table().contains("p50   12.5"), "{}", r.table());
        let dir = std::env::temp_dir().join(format!("popcast-report-{}", std::process::id()));
        let path = r.write(&dir).unwrap();
        let (back, machine) = Report::read(&path).unwrap();
        assert_eq!(back.rows, r.rows);
        assert!(machine["cpus"].as_u64().unwrap() >= 1);
        let md = results_markdown(&dir, &["demo"]);
        assert!(md.contains("| what | ms |\n|---|---|\n| p50 | 12.5 |"), "{md}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
