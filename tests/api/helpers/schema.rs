//! Checks against the published schemas with a validator we did not write (Python's
//! `jsonschema`): events against docs/event.schema.json, admin answers against the
//! component schemas of docs/openapi.yaml.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Validates each line of stdin as an event (argv[1]: the JSON Schema).
const VALIDATE_EVENTS: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
bad = 0
for i, line in enumerate(sys.stdin):
    ev = json.loads(line)
    for err in v.iter_errors(ev):
        bad += 1
        print(f"event {i} ({ev.get('type')}): {err.message} at {list(err.absolute_path)}")
sys.exit(1 if bad else 0)
"#;

/// Validates each line `<schema name> <json>` against that component of the OpenAPI
/// document (argv[1]).
const VALIDATE_OPENAPI: &str = r##"
import json, sys, yaml
from jsonschema import Draft202012Validator
spec = yaml.safe_load(open(sys.argv[1]))
bad = 0
for line in sys.stdin:
    name, body = line.split(" ", 1)
    schema = {"$ref": "#/components/schemas/" + name, "components": spec["components"]}
    for err in Draft202012Validator(schema).iter_errors(json.loads(body)):
        bad += 1
        print(f"{name}: {err.message} at {list(err.absolute_path)}")
sys.exit(1 if bad else 0)
"##;

/// Asserts that every event validates against docs/event.schema.json; the message
/// lists each violation.
pub fn assert_events_match_schema(events: &[Value]) {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/event.schema.json");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    validate(VALIDATE_EVENTS, schema, &lines);
}

/// Asserts that each answer validates against its schema in docs/openapi.yaml:
/// `(schema name, answer)`.
pub fn assert_match_openapi(answers: &[(&str, &Value)]) {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
    let lines: Vec<String> = answers
        .iter()
        .map(|(name, body)| format!("{name} {body}"))
        .collect();
    validate(VALIDATE_OPENAPI, spec, &lines);
}

/// Runs `script` with `document` as its argument and one line per item on stdin.
fn validate(script: &str, document: &str, lines: &[String]) {
    let mut child = Command::new("python3")
        .args(["-c", script, document])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (the project venv: scripts/test sets it up)");
    {
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "schema violations:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
