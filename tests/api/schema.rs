//! `schema.graphql` is the public contract, written from the code.

use std::path::Path;

#[test]
fn committed_schema_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let generated = dishpatch::graphql::sdl();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        std::fs::write(&path, &generated).expect("write schema.graphql");
        panic!(
            "schema.graphql was stale and has been rewritten from the code; review and commit it"
        );
    }
}

#[test]
fn the_schema_command_prints_the_committed_schema() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dishpatch"))
        .arg("schema")
        .output()
        .expect("dishpatch runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        dishpatch::graphql::sdl()
    );
}

#[test]
fn every_type_and_field_of_the_schema_is_documented() {
    let sdl = dishpatch::graphql::sdl();
    let mut undocumented = Vec::new();
    // Whether the line before (ignoring the inside of descriptions) closed a description.
    let mut described = false;
    let mut in_description = false;
    let mut in_schema_block = false;
    for line in sdl.lines() {
        let trimmed = line.trim();
        if in_description {
            if trimmed.ends_with("\"\"\"") {
                in_description = false;
                described = true;
            }
            continue;
        }
        if trimmed.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            let one_line = trimmed.len() > 3 && trimmed.ends_with("\"\"\"");
            in_description = !one_line;
            described = one_line;
            continue;
        }
        // `schema { query: Query }` names the roots; it has nothing to document.
        if trimmed.starts_with("schema {") {
            in_schema_block = true;
        }
        if in_schema_block {
            in_schema_block = trimmed != "}";
            continue;
        }
        let is_definition = ["type ", "input ", "enum ", "interface "]
            .iter()
            .any(|kind| trimmed.starts_with(kind))
            || (line.starts_with('\t')
                && !line.starts_with("\t\t")
                && !trimmed.starts_with(')')
                && (trimmed.contains(':') || trimmed.ends_with('(')));
        if is_definition && !described {
            undocumented.push(trimmed.to_owned());
        }
        described = false;
    }
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
}
