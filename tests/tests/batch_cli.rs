//! The batch-score local command (`cargo run -p batch-score -- <file>
//! --model <name>`) on local files, with the example registry.

use std::process::Command;

use maas_tests::repo_root;
use serde_json::Value;

/// Runs the command built by `make functions` and returns its exit status,
/// the summary it printed and its stderr.
fn run(args: &[&str]) -> (i32, Value, String) {
    let binary = repo_root().join("target/debug/batch-score");
    assert!(binary.exists(), "{} is missing; build it with `cargo build -p batch-score`", binary.display());
    let output = Command::new(binary)
        .args(args)
        .env("MODEL_REPOSITORY", repo_root().join("examples/registry"))
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap_or(-1), serde_json::from_str(&stdout).unwrap_or(Value::Null), String::from_utf8_lossy(&output.stderr).into())
}

#[test]
fn local_file_is_scored_beside_itself() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("esol.csv");
    std::fs::copy(repo_root().join("data/esol/delaney-processed.csv"), &input).unwrap();

    let (status, summary, stderr) = run(&[input.to_str().unwrap(), "--model", "esol-solubility:1"]);

    assert_eq!(status, 0, "{stderr}");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["rows"]["scored"], 1128);
    let scored = std::fs::read_to_string(dir.path().join("esol.out.csv")).unwrap();
    assert_eq!(scored.lines().count(), 1129);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("esol.summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary);
    assert_eq!(std::fs::read_to_string(dir.path().join("esol.errors.jsonl")).unwrap(), "");
}

#[test]
fn output_option_places_all_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, "{\"inputs\": [1, 116.204, 1, 0, 2, 20.23]}\nnot json\n").unwrap();
    let output = dir.path().join("results/scored.jsonl");

    let (status, summary, stderr) = run(&[input.to_str().unwrap(), "--model", "esol-solubility", "--output", output.to_str().unwrap()]);

    assert_eq!(status, 0, "{stderr}");
    assert_eq!(summary["rows"]["failed"], 1);
    assert!(output.exists());
    assert!(dir.path().join("results/scored.errors.jsonl").exists());
    assert!(dir.path().join("results/scored.summary.json").exists());
}

#[test]
fn rejected_file_exits_with_status_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wrong.csv");
    std::fs::write(&input, "a,b\n1,2\n").unwrap();

    let (status, summary, _) = run(&[input.to_str().unwrap(), "--model", "esol-solubility"]);

    assert_eq!(status, 1);
    assert_eq!(summary["status"], "failed");
    assert!(summary["reason"].as_str().unwrap().contains("no column for feature"), "{summary}");
    assert!(!dir.path().join("wrong.out.csv").exists());
}

#[test]
fn missing_model_argument_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.csv");
    std::fs::write(&input, "a,b\n1,2\n").unwrap();

    let (status, _, stderr) = run(&[input.to_str().unwrap()]);

    assert_eq!(status, 2);
    assert!(stderr.contains("--model"), "{stderr}");
}
