//! Both sides of a comparison: the simulator's runs averaged key by key, and a table of
//! real, simulated and their ratio for every key the two share.

use serde_json::{Map, Value};

/// Keys that describe the run rather than measure the protocol.
const ABOUT_THE_RUN: [&str; 10] = [
    "scenario",
    "impl",
    "nodes",
    "seed",
    "loss",
    "wall_s",
    "cpu_s",
    "peak_rss_mib",
    "sim_events",
    "trace_digest",
];

/// Mean of each measured numeric key over `runs` (null when any run has null: a goal some run
/// never reached); other values from the first run; `converged` only if all converged.
pub fn mean(runs: &[Value]) -> Value {
    let Some(Value::Object(first)) = runs.first() else { return Value::Null };
    let mut out = Map::new();
    for (key, value) in first {
        let values: Vec<&Value> = runs.iter().map(|r| &r[key]).collect();
        let merged = match value {
            _ if ABOUT_THE_RUN.contains(&key.as_str()) => value.clone(),
            Value::Number(_) => {
                let numbers: Option<Vec<f64>> = values.iter().map(|v| v.as_f64()).collect();
                numbers
                    .map_or(Value::Null, |xs| Value::from(xs.iter().sum::<f64>() / xs.len() as f64))
            }
            Value::Null => Value::Null,
            Value::Bool(_) => Value::Bool(values.iter().all(|v| v.as_bool() == Some(true))),
            other => other.clone(),
        };
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

/// Whether a key is a time or a traffic rate, the measures held to within 20%.
fn held_to_20_percent(key: &str) -> bool {
    key.ends_with("_s") && !matches!(key, "wall_s" | "cpu_s" | "virtual_s" | "duration_s")
        || key.starts_with("bytes_per")
        || key.starts_with("msgs_per")
}

/// Lines of a table: key, real, simulated, real / simulated; `!` marks a time or traffic
/// rate more than 20% apart.
pub fn side_by_side(real: &Value, sim: Option<&Value>) -> Vec<String> {
    let mut lines = vec![format!("  {:<32} {:>12} {:>12} {:>8}", "key", "real", "sim", "ratio")];
    let Value::Object(real) = real else { return lines };
    let show = |v: Option<&Value>| match v {
        None => "-".to_owned(),
        Some(Value::Number(x)) => x.as_f64().map_or("-".into(), format_number),
        Some(Value::Null) => "never".into(),
        Some(other) => other.to_string().trim_matches('"').to_owned(),
    };
    for (key, value) in real {
        if ABOUT_THE_RUN.contains(&key.as_str()) {
            continue;
        }
        let other = sim.and_then(|s| s.get(key));
        let ratio = match (value.as_f64(), other.and_then(Value::as_f64)) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        };
        let flag = match ratio {
            Some(r) if held_to_20_percent(key) && !(0.8..=1.2).contains(&r) => " !",
            _ => "",
        };
        let ratio = ratio.map_or("-".into(), |r| format!("{r:.2}"));
        lines.push(format!(
            "  {key:<32} {:>12} {:>12} {ratio:>8}{flag}",
            show(Some(value)),
            show(other)
        ));
    }
    lines
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn means_numbers_and_keeps_a_missed_goal_missed() {
        let runs = [
            json!({"scenario": "detect", "detect_all_s": 6.0, "heal_s": 1.0, "converged": true}),
            json!({"scenario": "detect", "detect_all_s": 8.0, "heal_s": null, "converged": false}),
        ];
        let m = mean(&runs);
        assert_eq!(m["detect_all_s"], json!(7.0));
        assert_eq!(m["heal_s"], Value::Null);
        assert_eq!(m["converged"], json!(false));
        assert_eq!(m["scenario"], json!("detect"));
    }

    #[test]
    fn flags_times_more_than_a_fifth_apart() {
        let real = json!({"detect_all_s": 10.0, "false_offline": 3, "bytes_per_member_s": 100.0});
        let sim = json!({"detect_all_s": 7.0, "false_offline": 1, "bytes_per_member_s": 110.0});
        let lines = side_by_side(&real, Some(&sim));
        let row = |key: &str| lines.iter().find(|l| l.contains(key)).unwrap().clone();
        assert!(row("detect_all_s").ends_with(" !"), "{}", row("detect_all_s"));
        assert!(!row("false_offline").ends_with('!'), "counts are not held to 20%");
        assert!(!row("bytes_per_member_s").ends_with('!'));
    }
}
