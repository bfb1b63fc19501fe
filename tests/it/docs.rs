//! The README and docs/ point only at things that exist: every relative link and anchor,
//! and every repository path they name in backticks (scripts/check-doc-paths).

use std::process::Command;

fn check(files: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/check-doc-paths"
        ))
        .args(files)
        .output()
        .expect("python3 runs scripts/check-doc-paths")
}

#[test]
fn every_link_anchor_and_path_in_the_readme_and_docs_exists() {
    let out = check(&[]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_file_anchor_or_path_is_named() {
    let page = format!(
        "{}/tests/doc-check-{}.md",
        env!("CARGO_MANIFEST_DIR"),
        std::process::id()
    );
    std::fs::write(
        &page,
        "# Page\n\nSee [gone](../docs/nowhere.md), [here](#no-such-heading) and `src/nowhere.rs`.\n",
    )
    .unwrap();
    let out = check(&[page.as_str()]);
    std::fs::remove_file(&page).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for needle in ["docs/nowhere.md", "#no-such-heading", "src/nowhere.rs"] {
        assert!(text.contains(needle), "`{needle}` not named in:\n{text}");
    }
}
