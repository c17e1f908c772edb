//! The drivers stand apart: a tokio user compiles no thread driver, a threaded user no
//! tokio, and neither gets serde unless they ask for it. Checked on the dependency graph
//! `cargo tree` prints from the lock file.

use std::process::Command;

/// The packages (`name vX.Y.Z`) `package` pulls in through normal dependencies, with its
/// default features only, and the features enabled on them.
fn tree(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["tree", "--offline", "--prefix", "none", "-e", "normal,features", "-p", package])
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn has(tree: &str, package: &str) -> bool {
    tree.lines().any(|line| line.starts_with(&format!("{package} v")))
}

#[test]
fn each_driver_builds_without_the_other_and_without_serde() {
    let tokio = tree("swim-tokio");
    assert!(has(&tokio, "swim-driver") && has(&tokio, "tokio"), "{tokio}");
    assert!(!has(&tokio, "swim-std"), "{tokio}");
    let std = tree("swim-std");
    assert!(has(&std, "swim-driver"), "{std}");
    assert!(!has(&std, "tokio") && !has(&std, "swim-tokio"), "{std}");
    for tree in [&tokio, &std] {
        assert!(!tree.lines().any(|l| l.starts_with("serde")), "{tree}");
    }
}
