//! The batch-score local command (`cargo run -p batch-score -- <file>
//! --model <name>`) on local files, with the example registry.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use maas_tests::repo_root;
use serde_json::Value;
use shared::store::fs::FolderStore;

/// Runs the command built by `make functions` and returns its exit status,
/// the summary it printed and its stderr.
fn run(args: &[&str]) -> (i32, Value, String) {
    run_with_registry(&repo_root().join("examples/registry"), args)
}

fn run_with_registry(registry: &Path, args: &[&str]) -> (i32, Value, String) {
    let binary = repo_root().join("target/debug/batch-score");
    assert!(binary.exists(), "{} is missing; build it with `cargo build -p batch-score`", binary.display());
    let output = Command::new(binary)
        .args(args)
        .env("MODEL_REPOSITORY", registry)
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
fn output_never_overwrites_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.csv");
    let original = "Minimum Degree,Molecular Weight,Number of H-Bond Donors,Number of Rings,Number of Rotatable Bonds,Polar Surface Area\n1,116.204,1,0,2,20.23\n";
    std::fs::write(&input, original).unwrap();
    let same_file = format!("{}/../{}/rows.csv", dir.path().display(), dir.path().file_name().unwrap().to_str().unwrap());

    let (status, _, stderr) = run(&[input.to_str().unwrap(), "--model", "esol-solubility", "--output", &same_file]);

    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("would overwrite the input"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), original);
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

#[tokio::test]
async fn string_labels_fill_the_label_column() {
    let registry = tempfile::tempdir().unwrap();
    let fixtures = repo_root().join("tests/fixtures/sklearn");
    let ingester = ingest::job::Ingester {
        registrar: ingest::register::Registrar::new(Arc::new(FolderStore::new(registry.path()))),
        max_model_bytes: 50 * 1024 * 1024,
        sidecar_wait: Duration::ZERO,
        rejected_prefix: "rejected/".into(),
    };
    let model = std::fs::read(fixtures.join("esol_rf_multiclass_strings.onnx")).unwrap();
    let sidecar = std::fs::read(fixtures.join("esol_rf_multiclass_strings.json")).unwrap();
    let result = ingester.ingest_bytes("solubility-class", "fixture", &model, Some(&sidecar)).await.unwrap();
    assert!(matches!(result, ingest::job::JobResult::Done(_)), "{result:?}");

    // The rows and the outputs that onnxruntime gave for them.
    let expected: Value = serde_json::from_slice(&std::fs::read(fixtures.join("esol_rf_multiclass_strings.expected.json")).unwrap()).unwrap();
    let rows = expected["inputs"]["descriptors"]["data"].as_array().unwrap();
    let labels = expected["outputs"]["output_label"]["data"].as_array().unwrap();
    let probabilities = expected["outputs"]["output_probability"]["data"].as_array().unwrap();
    let mut csv = String::from("id,Minimum Degree,Molecular Weight,Number of H-Bond Donors,Number of Rings,Number of Rotatable Bonds,Polar Surface Area\n");
    for (index, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.as_array().unwrap().iter().map(Value::to_string).collect();
        csv.push_str(&format!("{index},{}\n", cells.join(",")));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("classes.csv");
    std::fs::write(&input, csv).unwrap();

    let (status, summary, stderr) = run_with_registry(registry.path(), &[input.to_str().unwrap(), "--model", "solubility-class"]);

    assert_eq!(status, 0, "{stderr}");
    assert_eq!(summary["rows"]["scored"], rows.len(), "{summary}");
    assert_eq!(summary["rows"]["failed"], 0, "{summary}");
    let mut reader = csv::Reader::from_path(dir.path().join("classes.out.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(&header[7..], ["label", "probability_high", "probability_moderate", "probability_poor"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record[7], *labels[index].as_str().unwrap(), "row {index}");
        let expected_row = probabilities[index].as_array().unwrap();
        for (class, value) in expected_row.iter().enumerate() {
            let got: f64 = record[8 + class].parse().unwrap();
            assert!((got - value.as_f64().unwrap()).abs() < 1e-5, "row {index} class {class}: {got} vs {value}");
        }
    }
}
