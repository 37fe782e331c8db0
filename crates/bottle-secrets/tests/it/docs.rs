//! The crate README's rule table is the published contract: it lists every detector.

use bottle_secrets::Detector;

#[test]
fn the_readme_rule_table_has_a_row_for_each_detector_with_its_max_len() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // The rows of the table under `## Rules`.
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != "## Rules")
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| line.starts_with("| `"))
        .collect();
    assert!(!rows.is_empty(), "the README has no `## Rules` table");
    for detector in Detector::ALL {
        let row = rows
            .iter()
            .find(|row| row.starts_with(&format!("| `{}` |", detector.id())))
            .unwrap_or_else(|| panic!("the README's rule table has no row for {detector}"));
        assert!(
            row.contains(&format!("| {} |", detector.max_len())),
            "the README's row for {detector} does not give its max length {}: {row}",
            detector.max_len()
        );
    }
    for row in rows {
        let id = row
            .trim_start_matches("| `")
            .split('`')
            .next()
            .unwrap_or_default();
        assert!(
            id == "known-secret" || Detector::from_id(id).is_some(),
            "the README's rule table lists a rule that does not exist: {row}"
        );
    }
}
