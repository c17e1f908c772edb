//! What the README promises about its own snippets: a tokio application of its kind needs
//! one swim dependency line. The snippets are compiled (as doctests of this crate, see
//! `src/lib.rs`); here we check they name no swim crate but `swim_tokio`, so that this
//! crate's other dependencies are not what makes them build.

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `language` (`rust`, `toml`), in order.
fn blocks(language: &str) -> Vec<&'static str> {
    let fence = format!("```{language}");
    let mut found = Vec::new();
    let mut rest = README;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let body = &body[body.find('\n').map_or(body.len(), |n| n + 1)..];
        let end = body.find("```").expect("every fence is closed");
        found.push(&body[..end]);
        rest = &body[end + 3..];
    }
    found
}

/// The crates a Rust snippet names: the lowercase roots of its paths (`tokio` in
/// `tokio::time::timeout`, `swim_tokio` in `use swim_tokio::{..}`); types (`Event::..`)
/// start with a capital and are not crates.
fn crates(snippet: &str) -> Vec<&str> {
    let mut roots = Vec::new();
    for (at, _) in snippet.match_indices("::") {
        let before = &snippet[..at];
        let start =
            before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let root = &before[start..];
        let is_root = !before[..start].ends_with("::");
        if is_root && root.starts_with(|c: char| c.is_ascii_lowercase()) {
            roots.push(root);
        }
    }
    roots
}

#[test]
fn a_tokio_application_needs_one_swim_dependency_line() {
    let apps: Vec<&str> =
        blocks("rust").into_iter().filter(|b| b.contains("use swim_tokio::")).collect();
    assert!(apps.iter().any(|b| b.contains("#[tokio::main]")), "no tokio application");
    for app in &apps {
        for root in crates(app) {
            assert!(["std", "swim_tokio", "tokio", "clap"].contains(&root), "{root} in {app}");
        }
    }
    // The dependency lines shown for it: one swim crate (the other is an alternative, in a
    // comment), and tokio.
    let toml = blocks("toml").into_iter().find(|b| b.contains("swim-tokio")).expect("toml");
    let lines: Vec<&str> = toml
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .collect();
    let swim: Vec<&&str> = lines.iter().filter(|l| l.starts_with("swim")).collect();
    assert_eq!(swim.len(), 1, "{toml}");
    assert!(swim[0].starts_with("swim-tokio"), "{toml}");
    assert!(lines.iter().any(|l| l.starts_with("tokio")), "{toml}");
}

#[test]
fn crate_roots_are_found_and_types_are_not() {
    let snippet = "use swim_tokio::{Cluster, Event};\nlet d = std::time::Duration::ZERO;\n\
                   Event::Joined; tokio::time::sleep(d); swim_core::Node::start;";
    assert_eq!(crates(snippet), ["swim_tokio", "std", "tokio", "swim_core"]);
}
